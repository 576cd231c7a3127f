/* The cwd across fork, vfork, clone(CLONE_FS) and exec, relative to argv[1] (a directory
 * with a subdirectory "sub" holding a file "f"): prints what each process sees. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *base;

static void show(const char *who)
{
    char buffer[4096], content[64] = "";
    const char *cwd = getcwd(buffer, sizeof(buffer));
    int fd = open("f", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, content, sizeof(content) - 1);
        content[n > 0 ? n - 1 : 0] = '\0';
        close(fd);
    }
    size_t skip = cwd && strncmp(cwd, base, strlen(base)) == 0 ? strlen(base) : 0;
    printf("%s: cwd B%s f=%s\n", who, cwd ? cwd + skip : "(error)", fd >= 0 ? content : "-");
    fflush(stdout);
}

static int clone_child(void *unused)
{
    (void)unused;
    if (chdir("..") != 0 || chdir("sub") != 0)
        return 1;
    return chdir("..") == 0 ? 0 : 1; /* the parent's cwd moves with ours: CLONE_FS */
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    base = argv[1];
    if (chdir(argv[1]) != 0 || chdir("sub") != 0)
        return 1;
    show("parent");
    pid_t pid = fork();
    if (pid == 0) {
        show("fork child");
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    pid = vfork();
    if (pid == 0) {
        _exit(chdir("..") == 0 ? 0 : 1); /* vfork shares memory, not the fs struct */
    }
    waitpid(pid, NULL, 0);
    show("after vfork child's chdir");
    static char stack[1 << 16];
    pid = clone(clone_child, stack + sizeof(stack), CLONE_FS | SIGCHLD, NULL);
    int status = 0;
    waitpid(pid, &status, 0);
    show("after CLONE_FS child's chdir ..");
    if (chdir("sub") != 0)
        return 1;
    pid = fork();
    if (pid == 0) {
        execl("/bin/cat", "cat", "f", (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    printf("exec'd cat rc=%d\n", WEXITSTATUS(status));
    return 0;
}
