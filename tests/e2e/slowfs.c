/* A deliberately slow FUSE file system for the signal tests (vufuse issue 6).
 *
 * Two files: reading "slow" blocks until the kernel (or vufuse) sends INTERRUPT for the
 * request, then fails with EINTR; reading "stubborn" blocks the same way but answers its data
 * anyway.  Every READ start and every INTERRUPT is appended to the log file named by the
 * SLOWFS_LOG environment variable, so a test can signal the reader once its READ is waiting,
 * whatever the timing.  A READ that is never interrupted gives up after 60 s (ETIMEDOUT).
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *names[] = {NULL, NULL, "slow", "stubborn"};
static const char stubborn_data[] = "late\n";
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

static void note(const char *what, const char *name)
{
    const char *path = getenv("SLOWFS_LOG");
    FILE *log = path ? fopen(path, "a") : NULL;
    if (log) {
        fprintf(log, "%s %s\n", what, name);
        fclose(log);
    }
}

static void fill(fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0444;
    st->st_nlink = ino == FUSE_ROOT_ID ? 2 : 1;
    st->st_size = ino == FUSE_ROOT_ID ? 0 : 4096;
}

static void slow_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param entry;
    memset(&entry, 0, sizeof(entry));
    for (fuse_ino_t ino = 2; parent == FUSE_ROOT_ID && ino <= 3; ino++) {
        if (strcmp(name, names[ino]) == 0) {
            entry.ino = ino;
            fill(ino, &entry.attr);
            fuse_reply_entry(req, &entry);
            return;
        }
    }
    fuse_reply_err(req, ENOENT);
}

static void slow_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct stat st;
    if (ino != FUSE_ROOT_ID && (ino < 2 || ino > 3)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fill(ino, &st);
    fuse_reply_attr(req, &st, 0);
}

static void slow_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    fi->direct_io = 1; /* every read reaches us */
    fuse_reply_open(req, fi);
}

struct waiter {
    int interrupted;
};

static void on_interrupt(fuse_req_t req, void *data)
{
    (void)req;
    struct waiter *waiter = data;
    pthread_mutex_lock(&lock);
    waiter->interrupted = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void slow_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    (void)fi;
    (void)off;
    struct waiter waiter = {0};
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    note("read-started", names[ino]);
    fuse_req_interrupt_func(req, on_interrupt, &waiter);
    pthread_mutex_lock(&lock);
    int timed_out = 0;
    while (!waiter.interrupted && !timed_out)
        timed_out = pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT;
    pthread_mutex_unlock(&lock);
    fuse_req_interrupt_func(req, NULL, NULL);
    if (waiter.interrupted)
        note("interrupted", names[ino]);
    if (timed_out)
        fuse_reply_err(req, ETIMEDOUT);
    else if (ino == 3)
        fuse_reply_buf(req, stubborn_data, size < 5 ? size : 5);
    else
        fuse_reply_err(req, EINTR);
}

static const struct fuse_lowlevel_ops operations = {
    .lookup = slow_lookup,
    .getattr = slow_getattr,
    .open = slow_open,
    .read = slow_read,
};

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts opts;
    if (fuse_parse_cmdline(&args, &opts) != 0 || opts.mountpoint == NULL) {
        fprintf(stderr, "usage: %s [-f] MOUNTPOINT\n", argv[0]);
        return 2;
    }
    struct fuse_session *session = fuse_session_new(&args, &operations, sizeof(operations), NULL);
    int status = 1;
    if (session && fuse_set_signal_handlers(session) == 0) {
        if (fuse_session_mount(session, opts.mountpoint) == 0) {
            struct fuse_loop_config *config = fuse_loop_cfg_create();
            fuse_loop_cfg_set_max_threads(config, 4);
            status = fuse_session_loop_mt(session, config) != 0;
            fuse_loop_cfg_destroy(config);
            fuse_session_unmount(session);
        }
        fuse_remove_signal_handlers(session);
    }
    if (session)
        fuse_session_destroy(session);
    free(opts.mountpoint);
    fuse_opt_free_args(&args);
    return status;
}
