/*
 * The fast path: decide, for one notification, whether it may concern a virtual object.
 * Answering "no" lets the syscall run natively (CONTINUE); "yes" queues it for Python.
 * False positives cost a trip through Python; false negatives are bugs, so every doubt
 * answers "yes".
 *
 * Paths are resolved from the vufuse process's point of view, relative to the tracee's base
 * directory reached through /proc/TID/cwd or /proc/TID/fd/N.  Names that mean "the calling
 * process" (/proc/self, /dev/fd, /dev/stdin...) are rewritten to /proc/TID first, so that
 * they reach the tracee's objects and not ours.
 *
 * A resolved object is judged by identity first (see probe()): a watched prefix is normally
 * a mountpoint, an existing empty real directory, so nothing real lies beneath it and a path
 * is watched iff it resolves to the prefix directory itself, or its deepest resolvable
 * ancestor does, or it is a virtual socket: one stat() per existing path.  Prefixes with real
 * contents (e.g. the stand-in directories of virtual cwds) or with no real directory fall
 * back to canonical names for the objects that might lie beneath them.  Whether a prefix
 * has real contents follows its directory: through inotify events, which the listener reads
 * before each RECV (so a directory made before a syscall is known when it is judged), or,
 * where inotify is unavailable, one fstat of the prefix per probe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "tracer.h"

#define SYMLINK_DEPTH_MAX 8
#define BUFFER_SIZE (2 * PATH_MAX + 64)

static int proc_self_fd = -1;
static pthread_once_t proc_self_once = PTHREAD_ONCE_INIT;

static void open_proc_self_fd(void)
{
    proc_self_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static int under_prefix(const struct string_list *prefixes, const char *path)
{
    for (size_t i = 0; i < prefixes->count; i++) {
        const char *prefix = prefixes->items[i];
        size_t length = prefixes->lengths[i];
        if (length == 1 && prefix[0] == '/')
            return 1;
        if (strncmp(path, prefix, length) == 0 && (path[length] == '\0' || path[length] == '/'))
            return 1;
    }
    return 0;
}

/* "socket:[INO]" -> INO, else 0. */
static uint64_t socket_inode(const char *link)
{
    if (strncmp(link, "socket:[", 8) != 0)
        return 0;
    char *end;
    unsigned long long ino = strtoull(link + 8, &end, 10);
    return (*end == ']') ? (uint64_t)ino : 0;
}

/* readlink into buf (NUL-terminated); returns length or -errno. */
static ssize_t read_link(int dirfd, const char *path, char *buf, size_t size)
{
    ssize_t n = readlinkat(dirfd, path, buf, size - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return n;
}

/* The canonical name of an open fd of ours. */
static ssize_t fd_name(int fd, char *buf, size_t size)
{
    char number[16];
    pthread_once(&proc_self_once, open_proc_self_fd);
    snprintf(number, sizeof(number), "%d", fd);
    if (proc_self_fd >= 0)
        return read_link(proc_self_fd, number, buf, size);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return read_link(AT_FDCWD, path, buf, size);
}

static int name_is_watched(struct fastpath_config *config, const char *name)
{
    if (name[0] == '/')
        return under_prefix(&config->prefixes, name);
    uint64_t ino = socket_inode(name);
    return ino && inode_set_contains(&config->virtual_inodes, ino);
}

/* Rewrites, in place, a leading name that means "the calling process" to /proc/TID. */
static void rewrite_self(char *path, size_t size, pid_t tid)
{
    static const struct {
        const char *name;
        const char *format;
    } rules[] = {
        {"/proc/self", "/proc/%d"},
        {"/proc/thread-self", "/proc/%d/task/%d"},
        {"/dev/fd", "/proc/%d/fd"},
        {"/dev/stdin", "/proc/%d/fd/0"},
        {"/dev/stdout", "/proc/%d/fd/1"},
        {"/dev/stderr", "/proc/%d/fd/2"},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        size_t length = strlen(rules[i].name);
        if (strncmp(path, rules[i].name, length) != 0 ||
            (path[length] != '\0' && path[length] != '/'))
            continue;
        char head[64];
        int head_length = snprintf(head, sizeof(head), rules[i].format, (int)tid, (int)tid);
        size_t rest = strlen(path + length);
        if ((size_t)head_length + rest + 1 > size)
            return;
        memmove(path + head_length, path + length, rest + 1);
        memcpy(path, head, (size_t)head_length);
        return;
    }
}

static struct name_cache_entry *name_cache_slot(struct fastpath_config *config,
                                                const struct stat *st)
{
    uint64_t key = ((uint64_t)st->st_dev * 0x9E3779B97F4A7C15ull) ^ (uint64_t)st->st_ino;
    key *= 0xC2B2AE3D27D4EB4Full;
    return &config->name_cache[(key >> 40) % NAME_CACHE_SLOTS];
}

static int name_cache_hit(struct fastpath_config *config, const struct stat *st)
{
    if (!config->name_cache)
        return 0;
    pthread_mutex_lock(&config->name_cache_lock);
    struct name_cache_entry *entry = name_cache_slot(config, st);
    int hit = entry->generation == config->generation && entry->dev == st->st_dev &&
              entry->ino == st->st_ino && entry->ctime_sec == st->st_ctim.tv_sec &&
              entry->ctime_nsec == st->st_ctim.tv_nsec;
    pthread_mutex_unlock(&config->name_cache_lock);
    return hit;
}

static void name_cache_store(struct fastpath_config *config, const struct stat *st)
{
    if (!config->name_cache)
        return;
    pthread_mutex_lock(&config->name_cache_lock);
    *name_cache_slot(config, st) = (struct name_cache_entry){
        st->st_dev, st->st_ino, st->st_ctim.tv_sec, st->st_ctim.tv_nsec, config->generation};
    pthread_mutex_unlock(&config->name_cache_lock);
}

/* Whether the object `path` names is watched, or -errno when it does not resolve.  One
 * stat, compared with the prefixes' (st_dev, st_ino); only an object that may lie beneath a
 * prefix with real contents (same st_dev) or beneath a prefix with no real directory is
 * judged by its canonical name (open O_PATH, read back from /proc/self/fd), and a negative
 * answer is remembered per (dev, ino, ctime). */
static int probe(struct fastpath_config *config, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (S_ISSOCK(st.st_mode))
        return (!config->sockfs_dev || st.st_dev == config->sockfs_dev) &&
               inode_set_contains(&config->virtual_inodes, st.st_ino);
    int by_name = config->missing_count > 0;
    for (size_t i = 0; i < config->identity_count; i++) {
        struct prefix_identity *prefix = &config->identities[i];
        if (prefix->kind == PREFIX_MISSING || prefix->dev != st.st_dev)
            continue;
        if (prefix->ino == st.st_ino)
            return 1;
        if (config->all_watched) {
            by_name |= prefix->kind == PREFIX_NONEMPTY; /* kept current by inotify */
        } else if (!by_name) {
            /* An empty prefix may have gained entries since (the hypervisor makes its
             * stand-in directories under a watched root): one fstat tells. */
            pthread_mutex_lock(&config->name_cache_lock);
            prefix_refresh(prefix);
            by_name = prefix->kind == PREFIX_NONEMPTY;
            pthread_mutex_unlock(&config->name_cache_lock);
        }
    }
    if (!by_name || name_cache_hit(config, &st))
        return 0;
    char canonical[PATH_MAX + 1];
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return 1; /* it resolved a moment ago: be conservative */
    ssize_t n = fd_name(fd, canonical, sizeof(canonical));
    close(fd);
    int watched = n < 0 ? 1 : name_is_watched(config, canonical);
    if (!watched)
        name_cache_store(config, &st);
    return watched;
}

static int walk_is_watched(struct fastpath_config *config, pid_t tid, char *path, size_t floor,
                           int depth);

/* Whether a ".." component appears in `path`. */
static int has_dotdot(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")); p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return 1;
    return 0;
}

static int has_nonempty_prefix(struct fastpath_config *config)
{
    int found = 0;
    if (!config->all_watched)
        pthread_mutex_lock(&config->name_cache_lock);
    for (size_t i = 0; i < config->identity_count; i++) {
        if (!config->all_watched)
            prefix_refresh(&config->identities[i]); /* no inotify: look now */
        found |= config->identities[i].kind == PREFIX_NONEMPTY;
    }
    if (!config->all_watched)
        pthread_mutex_unlock(&config->name_cache_lock);
    return found;
}

/* The first component past the deepest resolvable ancestor may be a dangling symlink that
 * points into a watched tree: follow it by hand. */
static int dangling_link_is_watched(struct fastpath_config *config, pid_t tid,
                                    const char *parent, const char *component, const char *rest,
                                    int depth)
{
    if (depth >= SYMLINK_DEPTH_MAX)
        return 1;
    char *buffer = malloc(2 * BUFFER_SIZE);
    if (!buffer)
        return 1;
    char *link = buffer, *joined = buffer + BUFFER_SIZE;
    int watched = 0;
    struct stat st;
    int n = snprintf(link, BUFFER_SIZE, "%s/%s", strcmp(parent, "/") ? parent : "", component);
    if (n <= 0 || n >= BUFFER_SIZE || lstat(link, &st) < 0 || !S_ISLNK(st.st_mode))
        goto out;
    char target[PATH_MAX + 1];
    watched = 1;
    if (read_link(AT_FDCWD, link, target, sizeof(target)) < 0)
        goto out;
    if (target[0] == '/')
        n = snprintf(joined, BUFFER_SIZE, "%s%s", target, rest);
    else
        n = snprintf(joined, BUFFER_SIZE, "%s/%s%s", strcmp(parent, "/") ? parent : "", target,
                     rest);
    if (n > 0 && n < BUFFER_SIZE) {
        rewrite_self(joined, BUFFER_SIZE, tid);
        watched = walk_is_watched(config, tid, joined, 1, depth + 1);
    }
out:
    free(buffer);
    return watched;
}

/* `path` (BUFFER_SIZE bytes, modified and restored) is absolute; `floor` is the length of
 * the base it was built on ("/proc/TID/cwd"), which the walk never goes above: when the base
 * itself fails the thread or its dirfd is gone.  floor = 1 for a plain absolute path. */
static int walk_is_watched(struct fastpath_config *config, pid_t tid, char *path, size_t floor,
                           int depth)
{
    /* Lexical: catches walks into a mountpoint's hidden real contents that leave by "..", and
     * prefixes with no real directory.  Only meaningful on a path with a real base. */
    if (floor == 1 && under_prefix(&config->prefixes, path))
        return 1;
    int result = probe(config, path);
    if (result >= 0)
        return result;
    if (result == -ENAMETOOLONG || result == -ENOMEM)
        return 1;
    size_t end = strlen(path);
    for (;;) {
        while (end > floor && end > 1 && path[end - 1] == '/')
            end--;
        size_t slash = end;
        while (slash > 0 && path[slash - 1] != '/')
            slash--;
        if (slash == 0)
            return 1;
        size_t parent_end = slash > 1 ? slash - 1 : 1;
        if (parent_end < floor || end <= floor)
            return 0; /* the base itself failed: thread or dirfd gone, the kernel answers */
        char saved = path[parent_end];
        path[parent_end] = '\0';
        result = probe(config, path);
        if (result < 0) {
            path[parent_end] = saved;
            if (result == -ENAMETOOLONG || result == -ENOMEM)
                return 1;
            if (parent_end == 1)
                return 1; /* even "/" failed */
            end = parent_end;
            continue;
        }
        if (result == 0 && end - slash <= NAME_MAX) {
            char component[NAME_MAX + 1];
            memcpy(component, path + slash, end - slash);
            component[end - slash] = '\0';
            char *rest = path + end; /* starts with '/' or is empty */
            char *parent = strdup(path);
            path[parent_end] = saved;
            if (!parent)
                return 1;
            result = dangling_link_is_watched(config, tid, parent, component, rest, depth);
            free(parent);
            return result;
        }
        path[parent_end] = saved;
        return result;
    }
}

int fastpath_path_is_watched(struct fastpath_config *config, pid_t tid, int dirfd,
                             int has_dirfd, const char *path)
{
    char *joined = malloc(BUFFER_SIZE);
    if (!joined)
        return 1;
    int watched = 1;
    size_t floor = 1;
    if (config->watch_all) {
        goto out;
    } else if (path[0] == '/') {
        snprintf(joined, BUFFER_SIZE, "%s", path);
    } else if (!config->missing_count) {
        /* The kernel follows the magic link: no need to read the base's name. */
        int n;
        if (has_dirfd)
            n = snprintf(joined, BUFFER_SIZE, "/proc/%d/fd/%d", (int)tid, dirfd);
        else
            n = snprintf(joined, BUFFER_SIZE, "/proc/%d/cwd", (int)tid);
        floor = (size_t)n;
        /* A base inside a watched tree (a cwd in a stand-in directory) makes every relative
         * walk Python's, wherever it lands ("../../x" leaves the stand-in for real, not
         * virtually).  Only a prefix with real contents can hold a base other than itself,
         * a base that is a prefix itself is found by the walk below, and a walk without ".."
         * ends beneath its base, on the prefix's filesystem, where the name test sees it. */
        if (has_dotdot(path) && has_nonempty_prefix(config)) {
            int base = probe(config, joined);
            if (base != 0) {
                watched = base > 0; /* < 0: the thread or its dirfd is gone */
                goto out;
            }
        }
        if (path[0])
            snprintf(joined + n, BUFFER_SIZE - (size_t)n, "/%s", path);
    } else {
        char link[64], base[PATH_MAX + 1];
        if (has_dirfd)
            snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tid, dirfd);
        else
            snprintf(link, sizeof(link), "/proc/%d/cwd", (int)tid);
        ssize_t n = read_link(AT_FDCWD, link, base, sizeof(base));
        if (n < 0) {
            /* ENOENT: the fd is not open (the kernel answers EBADF) or the thread is gone. */
            watched = (n == -ENOENT) ? 0 : 1;
            goto out;
        }
        if (base[0] != '/') {
            /* A socket, pipe or anon inode: ENOTDIR, unless AT_EMPTY_PATH names the fd. */
            watched = name_is_watched(config, base);
            goto out;
        }
        static const char deleted[] = " (deleted)";
        if ((size_t)n >= sizeof(deleted) - 1 &&
            strcmp(base + n - (sizeof(deleted) - 1), deleted) == 0)
            goto out; /* a removed directory: can't be reopened by name, let Python judge */
        if (path[0] == '\0')
            snprintf(joined, BUFFER_SIZE, "%s", base);
        else
            snprintf(joined, BUFFER_SIZE, "%s/%s", strcmp(base, "/") ? base : "", path);
        if (under_prefix(&config->prefixes, joined))
            goto out;
    }
    if (floor == 1)
        rewrite_self(joined, BUFFER_SIZE, tid);
    watched = walk_is_watched(config, tid, joined, floor, 0);
out:
    free(joined);
    return watched;
}

int fastpath_cwd_is_watched(struct fastpath_config *config, pid_t tid)
{
    /* Only a stand-in directory (under the watched stand-in root) makes getcwd Python's, and
     * Python names stand-ins by the very link read here: one readlink, compared by name.
     * (A stat compared by identity costs the same, ~2 us, but a prefix with real contents
     * would then need the canonical name anyway.) */
    if (!config->prefixes.count)
        return 0;
    if (config->watch_all)
        return 1;
    char link[64], cwd[PATH_MAX + 1];
    snprintf(link, sizeof(link), "/proc/%d/cwd", (int)tid);
    ssize_t n = read_link(AT_FDCWD, link, cwd, sizeof(cwd));
    if (n < 0)
        return n == -ENOENT || n == -ESRCH ? 0 : 1; /* gone: nothing to answer */
    if (cwd[0] != '/')
        return 1; /* not reachable from our root: let Python judge */
    static const char deleted[] = " (deleted)";
    if ((size_t)n >= sizeof(deleted) - 1 &&
        strcmp(cwd + n - (sizeof(deleted) - 1), deleted) == 0)
        cwd[n - (sizeof(deleted) - 1)] = '\0'; /* a removed stand-in is still Python's */
    return under_prefix(&config->prefixes, cwd);
}

static int last_component_is_special(const struct string_list *names, const char *path)
{
    if (!names->count)
        return 0;
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    size_t length = end - start;
    for (size_t i = 0; i < names->count; i++) {
        if (names->lengths[i] == length && memcmp(names->items[i], path + start, length) == 0)
            return 1;
    }
    return 0;
}

/* 1: fd is one of our virtual files; 0: it is not; FD_NOT_OPEN: no such fd right now. */
#define FD_NOT_OPEN 2
static int fd_is_virtual(struct fastpath_config *config, pid_t tid, int fd, uint64_t *inode)
{
    char link[64], target[128];
    snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tid, fd);
    ssize_t length = read_link(AT_FDCWD, link, target, sizeof(target));
    if (length == -ENOENT)
        return FD_NOT_OPEN;
    if (length < 0)
        return 0;
    uint64_t ino = socket_inode(target);
    if (!ino || !inode_set_contains(&config->virtual_inodes, ino))
        return 0;
    *inode = ino;
    return 1;
}

/* The path of a pathname AF_UNIX address (bind/connect's arguments 1 and 2), NUL-terminated
 * in `path`; 0 when it is not one (another family, abstract, unnamed, unreadable). */
static int unix_address_path(pid_t tid, uint64_t addr, uint64_t length, char *path,
                             size_t size)
{
    struct sockaddr_un address;
    const size_t offset = offsetof(struct sockaddr_un, sun_path);
    if (length <= offset || length > sizeof(address) || size <= sizeof(address.sun_path))
        return 0;
    memset(&address, 0, sizeof(address));
    if (mem_read(tid, addr, &address, (size_t)length) != (ssize_t)length)
        return 0; /* the kernel gives the caller its own EFAULT */
    if (address.sun_family != AF_UNIX || address.sun_path[0] == '\0')
        return 0;
    size_t n = strnlen(address.sun_path, length - offset);
    memcpy(path, address.sun_path, n);
    path[n] = '\0';
    return 1;
}

/* sendmsg whose msghdr (sendmmsg: whose every mmsghdr) says no control data (so no
 * SCM_RIGHTS): nothing for Python. */
static int sendmsg_without_control(pid_t tid, const struct seccomp_notif *notif)
{
    if (notif->data.nr == __NR_sendmsg) {
        struct msghdr header;
        if (mem_read(tid, notif->data.args[1], &header, sizeof(header)) != (ssize_t)sizeof(header))
            return 1; /* the kernel gives the caller its own EFAULT */
        return header.msg_controllen == 0 || header.msg_control == NULL;
    }
    if (notif->data.nr != __NR_sendmmsg)
        return 0;
    struct mmsghdr chunk[64];
    uint64_t count = (uint32_t)notif->data.args[2];
    uint64_t address = notif->data.args[1];
    if (count > 1024)
        count = 1024; /* UIO_MAXIOV: the kernel sends no more */
    while (count) {
        size_t n = count < 64 ? (size_t)count : 64;
        if (mem_read(tid, address, chunk, n * sizeof(chunk[0])) != (ssize_t)(n * sizeof(chunk[0])))
            return 0; /* Python looks (a partly readable vector) */
        for (size_t i = 0; i < n; i++)
            if (chunk[i].msg_hdr.msg_controllen && chunk[i].msg_hdr.msg_control)
                return 0;
        count -= n;
        address += n * sizeof(chunk[0]);
    }
    return 1;
}

/* poll/ppoll whose pollfd array (arguments 0, 1) holds no fd in [fd_base, 2**31): the kernel
 * polls no virtual fd there.  An unreadable array is the kernel's EFAULT to give. */
static int poll_without_virtual_range(pid_t tid, const struct seccomp_notif *notif, int fd_base)
{
    if (notif->data.nr != __NR_poll && notif->data.nr != __NR_ppoll)
        return 0;
    struct pollfd chunk[256];
    uint64_t count = notif->data.args[1];
    uint64_t address = notif->data.args[0];
    if (count > (1u << 20))
        return 1; /* EINVAL from the kernel */
    while (count) {
        size_t n = count < 256 ? (size_t)count : 256;
        if (mem_read(tid, address, chunk, n * sizeof(chunk[0])) != (ssize_t)(n * sizeof(chunk[0])))
            return 1;
        for (size_t i = 0; i < n; i++)
            if (chunk[i].fd >= fd_base)
                return 0;
        count -= n;
        address += n * sizeof(chunk[0]);
    }
    return 1;
}

/* REASON_FD when an fd argument is a low-fd (or mapped) stand-in: a regular file whose
 * inode is in stand_in_inodes (one stat through /proc; the hypervisor checks st_dev too, a
 * false positive only costs a trip through Python).  Python keeps the set empty while no
 * stand-in lives, so the usual cost of these calls is the round trip alone (D29). */
static int low_fd_stand_in(struct fastpath_config *config, const struct spec_entry *entry,
                           const struct seccomp_notif *notif, struct queued_notification *out)
{
    for (int i = 0; i < 6; i++) {
        if (!(entry->fd_mask & (1 << i)))
            continue;
        int fd = (int)(uint32_t)notif->data.args[i];
        if (fd < 0)
            continue; /* >= fd_base too: a mapped fd stays a stand-in memfd (decisions D19) */
        char link[64];
        struct stat st;
        snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)notif->pid, fd);
        if (stat(link, &st) < 0 || !S_ISREG(st.st_mode) ||
            !inode_set_contains(&config->stand_in_inodes, st.st_ino))
            continue;
        out->fd = fd;
        out->inode = 0;
        return REASON_FD;
    }
    return 0;
}

int fastpath_decide(struct fastpath_config *config, const struct spec_entry *entry,
                    const struct seccomp_notif *notif, int fd_base,
                    struct queued_notification *out)
{
    if (entry->action == ACTION_PYTHON)
        return REASON_ALWAYS;
    if (entry->value_arg >= 0 && (uint32_t)notif->data.args[entry->value_arg] == entry->value)
        return REASON_ALWAYS; /* a request Python acts on whatever the fd */
    pid_t tid = (pid_t)notif->pid;
    int reason = 0;
    pthread_rwlock_rdlock(&config->lock);
    if (entry->action == ACTION_TRAP_CWD) {
        reason = fastpath_cwd_is_watched(config, tid) ? REASON_CWD : 0;
        pthread_rwlock_unlock(&config->lock);
        return reason;
    }
    if (notif->data.nr == __NR_select || notif->data.nr == __NR_pselect6) {
        /* The filter let nfds <= fd_base run: a set may name a virtual fd (decisions D26) */
        reason = config->virtual_inodes.live ? REASON_ALWAYS : 0;
        pthread_rwlock_unlock(&config->lock);
        return reason;
    }
    if (entry->action == ACTION_TRAP_VIRTUAL && config->virtual_inodes.live &&
        !sendmsg_without_control(tid, notif) &&
        !poll_without_virtual_range(tid, notif, fd_base)) {
        pthread_rwlock_unlock(&config->lock);
        return REASON_ALWAYS; /* exec/exit_group may drop a virtual fd: FLUSH (Python);
                               * sendmsg's SCM_RIGHTS may carry one (decisions D23) */
    }
    for (int i = 0; i < 6 && !reason; i++) {
        if (!(entry->fd_mask & (1 << i)))
            continue;
        int fd = (int)(uint32_t)notif->data.args[i];
        if (fd < fd_base)
            continue;
        int found = fd_is_virtual(config, tid, fd, &out->inode);
        /* An fd in the range that is not open right now may be a virtual file being
         * closed and reopened by another thread: letting the kernel run the call could
         * then hit the socket itself (pread -> ESPIPE).  Python looks again (EBADF, or the
         * new file).  close() of a closed fd is left to the kernel: closefrom() loops. */
        if (found == 1 || (found == FD_NOT_OPEN && notif->data.nr != __NR_close)) {
            if (found == FD_NOT_OPEN)
                out->inode = 0;
            out->fd = fd;
            reason = REASON_FD;
        }
    }
    if (entry->action == ACTION_TRAP_LOWFD && !reason && config->stand_in_inodes.live)
        reason = low_fd_stand_in(config, entry, notif, out);
    if (entry->action == ACTION_TRAP_SOCKADDR && !reason && config->prefixes.count) {
        char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
        if (unix_address_path(tid, notif->data.args[1], notif->data.args[2], path,
                              sizeof(path)) &&
            fastpath_path_is_watched(config, tid, AT_FDCWD, 0, path))
            reason = REASON_PATH;
    }
    for (int p = 0; p < 2 && !reason; p++) {
        int arg = entry->path_arg[p];
        if (arg < 0 || arg > 5 || (!config->prefixes.count && !config->special_names.count))
            continue;
        char path[PATH_MAX + 1];
        if (mem_read_string(tid, notif->data.args[arg], path, sizeof(path)) < 0)
            continue; /* the kernel gives the caller its own EFAULT / ENAMETOOLONG */
        if (last_component_is_special(&config->special_names, path)) {
            reason = REASON_SPECIAL;
            break;
        }
        if (!config->prefixes.count)
            continue;
        int dirfd_arg = entry->dirfd_arg[p];
        int dirfd = AT_FDCWD;
        if (dirfd_arg >= 0 && dirfd_arg <= 5)
            dirfd = (int)(uint32_t)notif->data.args[dirfd_arg];
        if (fastpath_path_is_watched(config, tid, dirfd, dirfd != AT_FDCWD, path))
            reason = REASON_PATH;
    }
    pthread_rwlock_unlock(&config->lock);
    return reason;
}
