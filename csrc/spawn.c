/*
 * The session: vufuse -> keeper -> command.
 *
 * The keeper is forked from a threaded process, so between fork and exit it only makes
 * plain system calls: no malloc, no stdio, no locks; /proc is read with getdents64 into
 * static buffers.  It is a child subreaper, so every daemonized process of the session stays
 * in its tree, and it watches vufuse through a pidfd: when vufuse dies (even by SIGKILL) or
 * asks for it, it SIGKILLs every descendant and exits.
 *
 * The command installs the seccomp filter itself (NO_NEW_PRIVS, NEW_LISTENER,
 * WAIT_KILLABLE_RECV), hands the listener fd to vufuse over a socketpair and execs; that
 * execve is trapped and waits until vufuse's listener thread picks it up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracer.h"

#define SIGNAL_MAX 64
#define PROCESS_MAX 32768
#define SWEEP_ROUNDS_MAX 5000 /* of at least 1 ms each */

/* What the command sends back: an errno (0: the listener fd rides along) and its pid. */
struct handback_message {
    int32_t error;
    int32_t pid;
};

struct child_context {
    const struct spawn_request *request;
    const struct sock_fprog *program;
    sigset_t mask;                      /* the spawning thread's signal mask */
    unsigned char ignored[SIGNAL_MAX + 1]; /* dispositions vufuse had: 1 = SIG_IGN */
    int handback_fd;                    /* the command's end of the socketpair */
    int status_write_fd;
    int control_read_fd;
    int vufuse_pidfd;
    pid_t keeper_pid; /* set by the keeper before it forks the command */
};

/* ---------- helpers usable after fork ---------- */

static void write_all(int fd, const char *text, size_t length)
{
    while (length) {
        ssize_t n = write(fd, text, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        text += n;
        length -= (size_t)n;
    }
}

static size_t append(char *buffer, size_t at, size_t size, const char *text)
{
    while (*text && at + 1 < size)
        buffer[at++] = *text++;
    buffer[at] = '\0';
    return at;
}

/* "vufuse: WHAT: strerror\n" on stderr. */
static void report_error(const char *what, int error)
{
    char message[512];
    size_t n = append(message, 0, sizeof(message), "vufuse: ");
    n = append(message, n, sizeof(message), what);
    n = append(message, n, sizeof(message), ": ");
    const char *text = strerrordesc_np(error);
    n = append(message, n, sizeof(message), text ? text : "unknown error");
    n = append(message, n, sizeof(message), "\n");
    write_all(2, message, n);
}

/* After the filter, the command makes no syscall but this sendmsg (let through by the
 * filter thanks to the cookie: the spec may trap sendmsg, and nobody listens yet) and
 * execve; hence `self` is passed in rather than asked for. */
static void send_handback(int fd, int error, int listener_fd, pid_t self, uint64_t cookie)
{
    struct handback_message message = {error, (int32_t)self};
    struct iovec iov = {&message, sizeof(message)};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (listener_fd >= 0) {
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buffer;
        msg.msg_controllen = sizeof(control.buffer);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &listener_fd, sizeof(int));
    }
    while (syscall(SYS_sendmsg, fd, &msg, MSG_NOSIGNAL, cookie) < 0 && errno == EINTR)
        ;
}

static void close_all_except(int *keep, int count)
{
    for (int i = 1; i < count; i++) /* insertion sort: count is tiny */
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned int low = 0;
    for (int i = 0; i < count; i++) {
        if (keep[i] < 0)
            continue;
        if ((unsigned int)keep[i] > low)
            syscall(SYS_close_range, low, (unsigned int)keep[i] - 1, 0);
        low = (unsigned int)keep[i] + 1;
    }
    syscall(SYS_close_range, low, ~0u, 0);
}

/* ---------- the command ---------- */

static void __attribute__((noreturn)) command_main(struct child_context *context)
{
    const struct spawn_request *request = context->request;
    pid_t self = getpid();
    /* The command dies with the keeper: once the keeper is gone nobody reports its status
     * or sweeps the session, so it must not run on unnoticed.  (Its descendants are swept
     * by the keeper only; PDEATHSIG is not inherited by fork.)  A keeper already gone
     * before the prctl is seen by the parent check. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != context->keeper_pid)
        _exit(127);
    close(context->status_write_fd);
    close(context->control_read_fd);
    close(context->vufuse_pidfd);

    for (int sig = 1; sig <= SIGNAL_MAX; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        action.sa_handler = context->ignored[sig] ? SIG_IGN : SIG_DFL;
        sigaction(sig, &action, NULL); /* glibc-reserved signals answer EINVAL: fine */
    }
    sigprocmask(SIG_SETMASK, &context->mask, NULL);

    /* Keep it below R, in case the spec traps fd syscalls in R. */
    int handback = fcntl(context->handback_fd, F_DUPFD_CLOEXEC, 3);
    if (handback < 0)
        handback = context->handback_fd;
    else
        close(context->handback_fd);

    if (request->cwd && chdir(request->cwd) < 0) {
        int error = errno;
        report_error(request->cwd, error);
        send_handback(handback, error, -1, self, 0);
        _exit(127);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        send_handback(handback, errno, -1, self, 0);
        _exit(127);
    }
    long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                            SECCOMP_FILTER_FLAG_NEW_LISTENER |
                                SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                            context->program);
    if (listener < 0 && errno == EINVAL) /* Linux < 5.19: no WAIT_KILLABLE_RECV */
        listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                           SECCOMP_FILTER_FLAG_NEW_LISTENER, context->program);
    if (listener < 0) {
        int error = errno;
        report_error("seccomp", error);
        send_handback(handback, error, -1, self, 0);
        _exit(127);
    }
    send_handback(handback, 0, (int)listener, self, request->handoff_cookie);
    /* Both fds are O_CLOEXEC: execve closes them, no close() needed under the filter. */

    int error = ENOENT, saw_eacces = 0;
    for (char *const *candidate = request->candidates; *candidate; candidate++) {
        execve(*candidate, request->argv, request->envp);
        error = errno;
        if (error == EACCES)
            saw_eacces = 1;
        else if (error != ENOENT && error != ENOTDIR && error != ESTALE && error != ELOOP &&
                 error != ENAMETOOLONG && error != ENODEV && error != ETIMEDOUT)
            break;
    }
    if (saw_eacces && error != ENOEXEC && (error == ENOENT || error == ENOTDIR))
        error = EACCES;
    report_error(request->display_name, error);
    _exit(error == ENOENT ? 127 : 126);
}

/* ---------- the keeper ---------- */

static struct {
    pid_t pid;
    pid_t ppid;
    char state;
    char marked;
} processes[PROCESS_MAX];
static char directory_buffer[32768];
static char stat_buffer[512];

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static int parse_int(const char *text, const char **end)
{
    int value = 0;
    while (*text >= '0' && *text <= '9')
        value = value * 10 + (*text++ - '0');
    if (end)
        *end = text;
    return value;
}

/* Fills processes[] (ascending pid, as /proc lists them); returns the count. */
static int scan_processes(void)
{
    int count = 0;
    int directory = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0)
        return 0;
    for (;;) {
        long n = syscall(SYS_getdents64, directory, directory_buffer, sizeof(directory_buffer));
        if (n <= 0)
            break;
        for (long at = 0; at < n;) {
            struct linux_dirent64 *entry = (struct linux_dirent64 *)(directory_buffer + at);
            at += entry->d_reclen;
            const char *end;
            int pid = parse_int(entry->d_name, &end);
            if (pid <= 0 || *end || count == PROCESS_MAX)
                continue;
            char path[32] = "/proc/";
            size_t length = append(path, 6, sizeof(path), entry->d_name);
            append(path, length, sizeof(path), "/stat");
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t got = read(fd, stat_buffer, sizeof(stat_buffer) - 1);
            close(fd);
            if (got <= 0)
                continue;
            stat_buffer[got] = '\0';
            /* "pid (comm) S ppid ...": comm may hold spaces and parentheses. */
            char *close_paren = NULL;
            for (char *p = stat_buffer; *p; p++)
                if (*p == ')')
                    close_paren = p;
            if (!close_paren || close_paren[1] != ' ' || !close_paren[2] || close_paren[3] != ' ')
                continue;
            processes[count].pid = pid;
            processes[count].state = close_paren[2];
            processes[count].ppid = parse_int(close_paren + 4, NULL);
            processes[count].marked = 0;
            count++;
        }
    }
    close(directory);
    return count;
}

static int find_process(int count, pid_t pid)
{
    int low = 0, high = count - 1;
    while (low <= high) {
        int mid = (low + high) / 2;
        if (processes[mid].pid == pid)
            return mid;
        if (processes[mid].pid < pid)
            low = mid + 1;
        else
            high = mid - 1;
    }
    return -1;
}

/* Reaps every exited child, reporting the command's status; returns 1 when the keeper has
 * no child left at all (ECHILD). */
static int reap_children(pid_t command, int status_fd, int *command_reported)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
        if (pid <= 0)
            return pid < 0 && errno == ECHILD;
        if (pid == command && !*command_reported) {
            int32_t raw = status;
            write_all(status_fd, (const char *)&raw, sizeof(raw));
            *command_reported = 1;
        }
    }
}

/* SIGKILL every descendant, again and again, until none is left alive. */
static void sweep(pid_t self, int status_fd, pid_t command, int *command_reported)
{
    for (int round = 0; round < SWEEP_ROUNDS_MAX; round++) {
        /* A subreaper with no child has no descendant (an orphan comes back to it): the
         * common end of a session, where the /proc scan would be ~1 ms for nothing. */
        if (reap_children(command, status_fd, command_reported))
            return;
        int count = scan_processes();
        int changed = 1;
        while (changed) {
            changed = 0;
            for (int i = 0; i < count; i++) {
                if (processes[i].marked)
                    continue;
                int parent = find_process(count, processes[i].ppid);
                if (processes[i].ppid == self || (parent >= 0 && processes[parent].marked)) {
                    processes[i].marked = 1;
                    changed = 1;
                }
            }
        }
        for (int i = 0; i < count; i++)
            if (processes[i].marked && processes[i].state != 'Z')
                kill(processes[i].pid, SIGKILL);
        if (reap_children(command, status_fd, command_reported))
            return;
        /* Children left, dying or forked since the scan: look again in a moment. */
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

/* The keeper must not be taken for vufuse: `pkill vufuse` (by name) or `pkill -f 'vufuse
 * run'` (by command line) aimed at vufuse would end it too, and the session's processes
 * would then outlive both, reparented to init.  Its name becomes KEEPER_NAME (no "vufuse"
 * in it) and its command line, read by the kernel from its own stack between mm->arg_start
 * and arg_end, is overwritten in place: no privilege needed.  The name is written followed
 * by NULs and a non-NUL last byte, the setproctitle(3) convention, so that /proc/PID/cmdline
 * stops at the name's NUL instead of showing the old length in NULs. */
#define KEEPER_NAME "session-keeper"

static unsigned long parse_unsigned(const char *text, const char **end)
{
    unsigned long value = 0;
    while (*text >= '0' && *text <= '9')
        value = value * 10 + (unsigned long)(*text++ - '0');
    *end = text;
    return value;
}

static void take_keeper_identity(void)
{
    prctl(PR_SET_NAME, KEEPER_NAME, 0, 0, 0);
    char buffer[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t got = read(fd, buffer, sizeof(buffer) - 1);
    close(fd);
    if (got <= 0)
        return;
    buffer[got] = '\0';
    /* Fields after "(comm)": state is field 3; arg_start and arg_end are 48 and 49. */
    const char *p = NULL;
    for (char *q = buffer; *q; q++)
        if (*q == ')')
            p = q + 1;
    if (!p)
        return;
    unsigned long arg_start = 0, arg_end = 0;
    for (int field = 3; field <= 49 && *p; field++) {
        while (*p == ' ')
            p++;
        const char *end;
        unsigned long value = parse_unsigned(p, &end);
        if (field == 48)
            arg_start = value;
        else if (field == 49)
            arg_end = value;
        while (*end && *end != ' ')
            end++;
        p = end;
    }
    if (!arg_start || arg_end <= arg_start + 1)
        return;
    char *area = (char *)arg_start;
    size_t size = arg_end - arg_start;
    memset(area, 0, size);
    size_t length = sizeof(KEEPER_NAME) - 1;
    if (length > size - 2)
        length = size - 2;
    memcpy(area, KEEPER_NAME, length);
    area[size - 1] = ' ';
}

static void __attribute__((noreturn)) keeper_main(struct child_context *context)
{
    take_keeper_identity();
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    /* Terminal and job-control signals are for the command; the keeper ends only by
     * vufuse's death or request.  SIGCHLD stays default (blocked, read via signalfd). */
    for (int sig = 1; sig <= SIGNAL_MAX; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD)
            continue;
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        action.sa_handler = SIG_IGN;
        sigaction(sig, &action, NULL);
    }
    sigset_t child_set;
    sigemptyset(&child_set);
    sigaddset(&child_set, SIGCHLD);
    int signal_fd = signalfd(-1, &child_set, SFD_CLOEXEC | SFD_NONBLOCK);

    /* Not vfork, though copying the keeper's page tables again costs ~1 ms (it is a copy
     * of vufuse): the command holds its own listener fd until its execve, which is trapped,
     * so a vufuse that stops listening before that exec would leave the command waiting
     * for ever and a vforked keeper stuck with it, unable to sweep. */
    context->keeper_pid = getpid();
    pid_t command = _Fork();
    if (command == 0) {
        if (signal_fd >= 0)
            close(signal_fd);
        command_main(context);
    }
    if (command < 0)
        send_handback(context->handback_fd, errno, -1, 0, 0);

    int keep[] = {context->status_write_fd, context->control_read_fd, context->vufuse_pidfd,
                  signal_fd};
    close_all_except(keep, 4);

    pid_t self = getpid();
    int command_reported = command < 0;
    struct pollfd fds[3] = {
        {context->vufuse_pidfd, POLLIN, 0},
        {context->control_read_fd, POLLIN, 0},
        {signal_fd, POLLIN, 0},
    };
    for (;;) {
        int n = poll(fds, signal_fd >= 0 ? 3 : 2, signal_fd >= 0 ? -1 : 100);
        if (n < 0 && errno != EINTR)
            break;
        if (signal_fd >= 0 && (fds[2].revents & POLLIN)) {
            struct signalfd_siginfo info[8];
            while (read(signal_fd, info, sizeof(info)) > 0)
                ;
        }
        reap_children(command, context->status_write_fd, &command_reported);
        if (fds[0].revents || fds[1].revents)
            break; /* vufuse died, asked for the sweep, or dropped its end */
    }
    sweep(self, context->status_write_fd, command, &command_reported);
    _exit(0);
}

/* ---------- vufuse's side ---------- */

static int receive_handback(int fd, struct handback_message *message, int *listener_fd)
{
    struct iovec iov = {message, sizeof(*message)};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buffer,
                         .msg_controllen = sizeof(control.buffer)};
    *listener_fd = -1;
    ssize_t n;
    do
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
            memcpy(listener_fd, CMSG_DATA(cmsg), sizeof(int));
    }
    if (n != (ssize_t)sizeof(*message)) {
        if (*listener_fd >= 0)
            close(*listener_fd);
        *listener_fd = -1;
        return -ECHILD; /* the command died before handing the listener back */
    }
    if (message->error || *listener_fd < 0) {
        if (*listener_fd >= 0)
            close(*listener_fd);
        *listener_fd = -1;
        return -(message->error ? message->error : EPROTO);
    }
    return 0;
}

int spawn_session(const struct spawn_request *request, const struct sock_fprog *program,
                  struct spawn_result *result)
{
    int handback[2] = {-1, -1}, status_pipe[2] = {-1, -1}, control_pipe[2] = {-1, -1};
    int vufuse_pidfd = -1, error = 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, handback) < 0 ||
        pipe2(status_pipe, O_CLOEXEC) < 0 || pipe2(control_pipe, O_CLOEXEC) < 0) {
        error = -errno;
        goto fail;
    }
    vufuse_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (vufuse_pidfd < 0) {
        error = -errno;
        goto fail;
    }
    fcntl(status_pipe[0], F_SETFL, O_NONBLOCK);

    struct child_context context; /* the children read their copy of it after fork */
    memset(&context, 0, sizeof(context));
    context.request = request;
    context.program = program;
    context.handback_fd = handback[1];
    context.status_write_fd = status_pipe[1];
    context.control_read_fd = control_pipe[0];
    context.vufuse_pidfd = vufuse_pidfd;
    for (int sig = 1; sig <= SIGNAL_MAX; sig++) {
        struct sigaction action;
        /* Python itself ignores SIGPIPE and SIGXFSZ: the command gets the defaults. */
        if (sig == SIGPIPE || sig == SIGXFSZ || sigaction(sig, NULL, &action) < 0)
            continue;
        context.ignored[sig] = action.sa_handler == SIG_IGN;
    }
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &context.mask);
    pid_t keeper = _Fork();
    if (keeper == 0)
        keeper_main(&context);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &context.mask, NULL);
    if (keeper < 0) {
        error = -fork_errno;
        goto fail;
    }
    close(handback[1]);
    handback[1] = -1;
    close(status_pipe[1]);
    status_pipe[1] = -1;
    close(control_pipe[0]);
    control_pipe[0] = -1;
    close(vufuse_pidfd);
    vufuse_pidfd = -1;

    struct handback_message message = {0, 0};
    int listener_fd;
    error = receive_handback(handback[0], &message, &listener_fd);
    close(handback[0]);
    handback[0] = -1;
    if (error) {
        char request_sweep = 'K';
        write(control_pipe[1], &request_sweep, 1);
        while (waitpid(keeper, NULL, 0) < 0 && errno == EINTR)
            ;
        goto fail;
    }
    /* Wake the tracee on the listener's CPU and vice versa (Linux 6.6+; best effort). */
    ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    result->keeper_pid = keeper;
    result->command_pid = message.pid;
    result->listener_fd = listener_fd;
    result->status_fd = status_pipe[0];
    result->control_fd = control_pipe[1];
    return 0;

fail:
    for (int i = 0; i < 2; i++) {
        if (handback[i] >= 0)
            close(handback[i]);
        if (status_pipe[i] >= 0)
            close(status_pipe[i]);
        if (control_pipe[i] >= 0)
            close(control_pipe[i]);
    }
    if (vufuse_pidfd >= 0)
        close(vufuse_pidfd);
    return error;
}
