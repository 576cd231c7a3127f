/*
 * The C tracing core of vufuse: shared declarations.
 *
 * One Tracer owns one traced session: the seccomp listener fd, the listener thread that
 * answers the fast path, the slow-path queue handed to Python, the fast-path configuration
 * (watched prefixes, special names, virtual socket inodes).
 * The contract with Python is docs/tracer-core.md.
 */
#ifndef VUFUSE_TRACER_H
#define VUFUSE_TRACER_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Newer than Debian 12's 6.1 headers. */
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

/* A seccomp-notify ioctl (SEND, ADDFD without SEND, ID_VALID), retried while a signal to the
 * supervisor interrupts it: the kernel takes the notify lock interruptibly, and a stop
 * (Ctrl-Z, a debugger or profiler attaching, the freezer) or a handled signal makes the ioctl
 * fail with EINTR having done nothing — which, unretried, left a tracee unanswered for ever or
 * answered with a wrong errno.  Not for ADDFD with SECCOMP_ADDFD_FLAG_SEND: see
 * Tracer_addfd. */
int notify_ioctl(int fd, unsigned long request, void *argument);

/* Spec actions (docs/tracer-core.md). */
enum {
    ACTION_TRAP = 1,
    ACTION_TRAP_FD = 2,
    ACTION_ENOSYS = 3,
    ACTION_PYTHON = 4,
    ACTION_DUMPABLE = 5,
    ACTION_TRAP_CWD = 6, /* getcwd: queued only when the caller's cwd is under a prefix */
    ACTION_TRAP_VIRTUAL = 7, /* queued while any virtual inode lives, else as ACTION_TRAP */
    /* bind/connect: queued when argument 0 is a virtual fd, or arguments 1/2 are a sockaddr_un
     * whose (non-abstract) path may lie under a prefix */
    ACTION_TRAP_SOCKADDR = 8,
    /* fd metadata/sync calls (fchmod, fsync, utimensat(fd, NULL)...): always notified; judged
     * as ACTION_TRAP, and also queued (REASON_FD) while low-fd stand-ins live when an fd
     * argument below fd_base is one of them (its file's inode is in stand_in_inodes; D29) */
    ACTION_TRAP_LOWFD = 9,
};

/* Why a notification was queued for Python. */
enum {
    REASON_ALWAYS = 1,
    REASON_FD = 2,
    REASON_SPECIAL = 3,
    REASON_PATH = 4,
    REASON_CWD = 5,
};

#define FD_BASE_DEFAULT 512
#define MAX_NR_DEFAULT 470

struct spec_entry {
    int nr;
    int action;
    int fd_mask;
    int path_arg[2];  /* index of a path argument, or -1 */
    int dirfd_arg[2]; /* index of its dirfd argument, or -1 for the cwd */
    /* ACTION_TRAP_FD only: also queued (REASON_ALWAYS) when the low 32 bits of argument
     * value_arg equal value (an ioctl request that acts on a real fd); -1: none */
    int value_arg;
    unsigned int value;
};

/* ---- bpf_filter.c ---- */
/* Builds the classic-BPF program for `spec` (sorted by nr in place).  A sendmsg whose 4th
 * argument (unused by the kernel) is `handoff_cookie` is always allowed: the command hands
 * the listener back with it before anyone listens.  Returns a malloc'ed program and its
 * length, or NULL with errno set (EINVAL: duplicate nr; E2BIG: too long). */
struct sock_filter *filter_build(struct spec_entry *spec, size_t count, int fd_base,
                                 int max_nr, uint64_t handoff_cookie, unsigned short *out_len);

/* ---- config.c: fast-path configuration, read by the listener, written by Python ---- */
struct string_list {
    char **items;
    size_t *lengths;
    size_t count;
};

struct inode_set {
    uint64_t *slots; /* open addressing; 0 = empty, UINT64_MAX = deleted */
    size_t capacity; /* power of two */
    size_t used;     /* live + deleted */
    size_t live;
};

enum prefix_kind {
    PREFIX_EMPTY,    /* an existing empty directory: judged by identity alone */
    PREFIX_NONEMPTY, /* has real entries: objects on its st_dev are judged by name */
    PREFIX_MISSING,  /* no real directory: every object is judged by name and lexically */
};

struct prefix_identity {
    dev_t dev;
    ino_t ino;
    int kind;              /* EMPTY <-> NONEMPTY follows the directory (see fastpath.c) */
    int fd;                /* O_PATH fd of the directory, or -1 */
    struct timespec mtime; /* of the directory when `kind` was judged: timestamps are */
    struct timespec ctime; /* coarse (a tick), so its link count and size count too */
    nlink_t nlink;
    off_t size;
    int watch; /* inotify watch descriptor, or -1 */
};

/* Objects (by dev, ino, ctime) whose canonical name was found outside every prefix; valid
 * for one prefix generation.  A recreated or renamed inode has a new ctime. */
#define NAME_CACHE_SLOTS 4096

struct name_cache_entry {
    dev_t dev;
    ino_t ino;
    int64_t ctime_sec;
    int64_t ctime_nsec;
    uint64_t generation; /* 0 = empty */
};

struct fastpath_config {
    pthread_rwlock_t lock;
    struct string_list prefixes; /* canonical absolute paths, no trailing slash ("/" kept) */
    struct prefix_identity *identities; /* one per prefix, taken when the list was set */
    size_t identity_count;
    size_t missing_count;  /* prefixes of kind PREFIX_MISSING */
    int watch_all;         /* "/" is a prefix */
    uint64_t generation;   /* bumped by every config_set_prefixes */
    dev_t sockfs_dev;      /* st_dev of sockets, 0 if unknown */
    struct string_list special_names;
    struct inode_set virtual_inodes;
    struct inode_set stand_in_inodes; /* memfds standing in for virtual files below fd_base */
    pthread_mutex_t name_cache_lock;
    struct name_cache_entry *name_cache; /* NAME_CACHE_SLOTS entries, or NULL */
    /* inotify on the prefix directories: when every prefix is watched, a prefix's kind is
     * re-judged only when the listener sees an event (config_drain_events); otherwise every
     * probe fstats the same-filesystem prefixes. */
    int inotify_fd;
    int all_watched;
};

int config_init(struct fastpath_config *config);
void config_destroy(struct fastpath_config *config);
/* Replace the prefix list (taking ownership of `fresh`) and recompute the identities. */
/* Re-judges an EMPTY/NONEMPTY prefix whose directory changed since; with name_cache_lock. */
void prefix_refresh(struct prefix_identity *prefix);
/* Reads pending inotify events and re-judges the prefixes they concern (takes the write
 * lock).  The listener calls it before each RECV when the inotify fd is readable, so that a
 * directory made under a prefix before a syscall is known when that syscall is judged. */
void config_drain_events(struct fastpath_config *config);
void config_set_prefixes(struct fastpath_config *config, struct string_list *fresh);
/* Replace a list: takes ownership of `fresh` (freeing the old one). */
void config_replace_list(struct fastpath_config *config, struct string_list *target,
                         struct string_list *fresh);
void string_list_free(struct string_list *list);
/* The inode set is guarded by config->lock like the lists. */
int inode_set_add(struct inode_set *set, uint64_t ino); /* 0 or -ENOMEM */
void inode_set_remove(struct inode_set *set, uint64_t ino);
int inode_set_contains(const struct inode_set *set, uint64_t ino);

/* ---- tracee_mem.c: tracee memory, resolved by thread id at every call ---- */
/* All return bytes transferred or -errno (EFAULT for an unreadable address, ESRCH for a
 * thread that is gone).  Nothing is cached: a thread id reused by another process (while
 * the old one's process lives or not) is never read through a stale fd. */
ssize_t mem_read(pid_t tid, uint64_t addr, void *buf, size_t size);
/* Writes all of buf; read-only mappings too (through a fresh /proc/TID/mem). */
ssize_t mem_write(pid_t tid, uint64_t addr, const void *buf, size_t size);
/* Reads a NUL-terminated string of at most `limit` bytes including the NUL into buf
 * (capacity >= limit).  Returns its length, -EFAULT or -ENAMETOOLONG. */
ssize_t mem_read_string(pid_t tid, uint64_t addr, char *buf, size_t limit);

/* ---- fastpath.c: the decision taken by the listener thread ---- */
struct queued_notification {
    uint64_t id;
    uint32_t pid;
    int32_t nr;
    uint64_t args[6];
    int reason;
    int fd;
    uint64_t inode;
    uint64_t received_ns; /* CLOCK_MONOTONIC when the listener read it (for latency figures) */
};

/* Returns 0 for CONTINUE or a REASON_*; fills out->fd/inode for REASON_FD. */
int fastpath_decide(struct fastpath_config *config, const struct spec_entry *entry,
                    const struct seccomp_notif *notif, int fd_base,
                    struct queued_notification *out);
/* The getcwd rule alone (1: queue): the caller holds config->lock for reading. */
int fastpath_cwd_is_watched(struct fastpath_config *config, pid_t tid);
/* The path rule alone; the caller holds config->lock for reading. */
int fastpath_path_is_watched(struct fastpath_config *config, pid_t tid, int dirfd,
                             int has_dirfd, const char *path);

/* ---- spawn.c: the keeper process and the command ---- */
struct spawn_request {
    char *const *argv;       /* NULL-terminated */
    char *const *envp;       /* NULL-terminated */
    char *const *candidates; /* NULL-terminated: paths to try execve on, in order */
    const char *cwd;         /* or NULL */
    const char *display_name;
    uint64_t handoff_cookie; /* see filter_build */
};

struct spawn_result {
    pid_t keeper_pid;
    pid_t command_pid;
    int listener_fd; /* O_CLOEXEC */
    int status_fd;   /* O_CLOEXEC|O_NONBLOCK read end: 4-byte raw wait status */
    int control_fd;  /* O_CLOEXEC write end: one byte asks for the kill sweep */
};

/* Forks keeper + command and receives the listener.  Returns 0 or -errno; on failure the
 * keeper (if any) has been told to sweep and has been reaped. */
int spawn_session(const struct spawn_request *request, const struct sock_fprog *program,
                  struct spawn_result *result);

/* ---- answers.c: stat answers served by the listener, the identity watch ---- */
/* What a syscall number is, for the answer cache (set once by Python before spawn). */
enum {
    ROLE_NONE = 0,
    ROLE_STAT = 1,       /* stat(path, buf) */
    ROLE_LSTAT = 2,      /* lstat(path, buf) */
    ROLE_NEWFSTATAT = 3, /* newfstatat(dirfd, path, buf, flags) */
    ROLE_STATX = 4,      /* statx(dirfd, path, flags, mask, buf) */
    ROLE_SET_UIDS = 5,   /* setuid, setreuid, setresuid, setfsuid: `count` uid arguments */
    ROLE_SET_GIDS = 6,   /* the gid twins */
    ROLE_SETGROUPS = 7,  /* setgroups(size, list) */
};

struct syscall_role {
    int role;
    int count;
};

#define ANSWER_STAT_SIZE 144  /* struct stat on x86_64 */
#define ANSWER_STATX_SIZE 256 /* struct statx */

struct answer_entry {
    struct answer_entry *next;
    uint64_t hash;
    int64_t deadline_ns; /* CLOCK_MONOTONIC */
    int is_symlink;
    size_t length;
    unsigned char stat_bytes[ANSWER_STAT_SIZE];
    unsigned char statx_bytes[ANSWER_STATX_SIZE];
    char path[];
};

struct answer_cache {
    pthread_mutex_t lock; /* entries, generation, groups */
    struct answer_entry **buckets;
    size_t count;        /* read without the lock as a hint */
    uint64_t generation; /* bumped by every drop */
    int ids_uniform;     /* atomic: every tracee still has the identity below */
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* sorted, no duplicates */
    int group_count;
    struct syscall_role *roles; /* max_nr + 1 slots */
    int max_nr;
};

int answers_init(struct answer_cache *cache, int max_nr);
void answers_destroy(struct answer_cache *cache);
/* The identity the session's command starts with: the vufuse process's own. */
void answers_capture_ids(struct answer_cache *cache);
/* Forget every answer; returns the new generation. */
uint64_t answers_drop(struct answer_cache *cache);
uint64_t answers_generation(struct answer_cache *cache);
/* 0 stored, 1 refused (generation moved on, or identities no longer uniform), -ENOMEM. */
int answers_store(struct answer_cache *cache, const char *path, size_t length,
                  const unsigned char *stat_bytes, const unsigned char *statx_bytes,
                  int is_symlink, int64_t deadline_ns, uint64_t generation);
/* Answers a stat-family notification from the cache; 1 when it was answered (or its
 * caller is gone), 0 to go on with the fast path. */
int answers_serve(struct answer_cache *cache, int listener_fd, const struct seccomp_notif *notif,
                  int role);
/* A set*id/setgroups call: turns serving off for good unless it can't change any id. */
void answers_watch_ids(struct answer_cache *cache, const struct seccomp_notif *notif,
                       const struct syscall_role *role);

/* ---- listener.c: the listener thread and the slow-path queue ---- */
enum {
    STAT_NOTIFICATIONS,
    STAT_FAST_CONTINUE,
    STAT_QUEUED,
    STAT_DROPPED,
    STAT_QUEUED_ALWAYS,
    STAT_QUEUED_FD,
    STAT_QUEUED_SPECIAL,
    STAT_QUEUED_PATH,
    STAT_QUEUED_CWD,
    STAT_ANSWERED, /* served from the answer cache */
    STAT_COUNT
};

struct listener {
    const struct spec_entry **by_nr; /* max_nr + 1 slots; NULL: plainly allowed */
    int max_nr;
    int fd_base;
    struct fastpath_config *config;
    struct answer_cache *answers;
    int listener_fd;
    int stop_fd;  /* eventfd: written to stop the thread */
    int event_fd; /* eventfd: readable while the queue is non-empty */
    pthread_t thread;
    int running;
    pthread_mutex_t queue_lock;
    struct queued_notification *queue;
    size_t queue_length, queue_capacity;
    uint64_t stats[STAT_COUNT]; /* updated with __atomic builtins */
};

/* Starts the thread on listener_fd (event_fd must exist).  0 or -errno. */
int listener_start(struct listener *listener);
/* Stops and joins the thread (idempotent). */
void listener_stop(struct listener *listener);
/* Takes the whole queue (the caller frees *out); resets event_fd. */
size_t listener_take(struct listener *listener, struct queued_notification **out);

#endif
