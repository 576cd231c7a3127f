/* clone(CLONE_FILES): an fd opened by the child is the parent's too, and one the parent
 * closes is gone for the child.  argv[1]: a directory holding a file "f". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int opened = -1, shared = -1;
static char path[4096];

static int opener(void *unused)
{
    (void)unused;
    opened = open(path, O_RDWR);
    return opened < 0;
}

static int reader(void *unused)
{
    (void)unused;
    char buffer[16] = "";
    if (lseek(shared, 0, SEEK_SET) < 0)
        return 1;
    ssize_t n = read(shared, buffer, 4);
    printf("child reads the parent's fd: %zd %.4s\n", n, buffer);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    static char stack[1 << 16];
    int status;
    if (argc < 2)
        return 2;
    snprintf(path, sizeof(path), "%s/f", argv[1]);
    pid_t pid = clone(opener, stack + sizeof(stack), CLONE_FILES | CLONE_VM | SIGCHLD, NULL);
    waitpid(pid, &status, 0);
    char buffer[16] = "";
    ssize_t n = read(opened, buffer, 4);
    printf("parent reads the child's fd: %zd %.4s\n", n, buffer);
    n = write(opened, "XY", 2);
    printf("parent writes: %zd\n", n);
    shared = opened;
    pid = clone(reader, stack + sizeof(stack), CLONE_FILES | CLONE_VM | SIGCHLD, NULL);
    waitpid(pid, &status, 0);
    pid = clone(opener, stack + sizeof(stack), CLONE_FILES | CLONE_VM | SIGCHLD, NULL);
    waitpid(pid, &status, 0);
    close(opened);
    errno = 0;
    n = read(opened, buffer, 4);
    printf("after close: %zd %s\n", n, strerror(errno));
    fflush(stdout);
    return 0;
}
