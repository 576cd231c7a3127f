/*
 * The answer cache: stat-family answers the listener thread gives itself, without Python.
 *
 * Python pushes (canonical absolute path -> struct stat and struct statx bytes, whether the
 * object is a symlink, a CLOCK_MONOTONIC deadline) after it has answered a stat of a virtual
 * object whose provider said how long the answer stays valid.  The listener then answers a
 * stat, lstat, newfstatat or statx whose path names exactly that key (absolute, or relative
 * to a real cwd or dirfd, joined lexically) by writing the bytes into the caller's buffer:
 * no queue, no wake-up of another thread.  Only canonical paths are ever pushed, so a caller
 * string with "//", ".", ".." or a trailing slash never matches one.
 *
 * Answers are shared by every caller, so they are served only while every tracee has the
 * identity the session started with: the set*id family is trapped (roles ROLE_SET_*) and a
 * call that may move any id away from it turns serving off for the rest of the session.
 * Python drops the whole cache whenever a provider's cached state changes (an invalidation,
 * a write, a mount or unmount); every drop bumps a generation, and a push made from a
 * computation that started before the last drop is refused.  The roles say which syscall
 * numbers are which (the C core hard-codes no number); their argument layouts are the
 * kernel's ABI of each family.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "tracer.h"

#ifndef AT_STATX_SYNC_TYPE
#define AT_STATX_SYNC_TYPE 0x6000
#endif
#ifndef AT_STATX_FORCE_SYNC
#define AT_STATX_FORCE_SYNC 0x2000
#endif
#define STATX_RESERVED_BIT 0x80000000u
#define ANSWER_BUCKETS 16384 /* power of two */
#define ANSWER_LIMIT 65536   /* beyond it the cache starts over */
#define GROUPS_MAX 256

static uint64_t path_hash(const char *path, size_t length)
{
    uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < length; i++) {
        hash ^= (unsigned char)path[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int compare_gid(const void *a, const void *b)
{
    gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
    return (x > y) - (x < y);
}

/* Sorts and removes duplicates; returns the new count. */
static int normalize_groups(gid_t *groups, int count)
{
    qsort(groups, (size_t)count, sizeof(gid_t), compare_gid);
    int kept = 0;
    for (int i = 0; i < count; i++)
        if (!kept || groups[kept - 1] != groups[i])
            groups[kept++] = groups[i];
    return kept;
}

void answers_capture_ids(struct answer_cache *cache)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    gid_t groups[GROUPS_MAX];
    int count = getgroups(GROUPS_MAX, groups);
    int uniform = getresuid(&ruid, &euid, &suid) == 0 && getresgid(&rgid, &egid, &sgid) == 0 &&
                  ruid == euid && euid == suid && rgid == egid && egid == sgid && count >= 0;
    pthread_mutex_lock(&cache->lock);
    cache->uid = euid;
    cache->gid = egid;
    cache->group_count = count > 0 ? normalize_groups(groups, count) : 0;
    memcpy(cache->groups, groups, sizeof(gid_t) * (size_t)cache->group_count);
    __atomic_store_n(&cache->ids_uniform, uniform, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&cache->lock);
}

int answers_init(struct answer_cache *cache, int max_nr)
{
    memset(cache, 0, sizeof(*cache));
    cache->buckets = calloc(ANSWER_BUCKETS, sizeof(*cache->buckets));
    cache->roles = calloc((size_t)max_nr + 1, sizeof(*cache->roles));
    cache->groups = calloc(GROUPS_MAX, sizeof(gid_t));
    if (!cache->buckets || !cache->roles || !cache->groups) {
        free(cache->buckets);
        free(cache->roles);
        free(cache->groups);
        return -ENOMEM;
    }
    cache->max_nr = max_nr;
    cache->generation = 1;
    pthread_mutex_init(&cache->lock, NULL);
    answers_capture_ids(cache);
    return 0;
}

static void free_entries(struct answer_cache *cache)
{
    for (size_t i = 0; i < ANSWER_BUCKETS; i++) {
        struct answer_entry *entry = cache->buckets[i];
        while (entry) {
            struct answer_entry *next = entry->next;
            free(entry);
            entry = next;
        }
        cache->buckets[i] = NULL;
    }
    cache->count = 0;
}

void answers_destroy(struct answer_cache *cache)
{
    if (!cache->buckets)
        return;
    free_entries(cache);
    free(cache->buckets);
    free(cache->roles);
    free(cache->groups);
    cache->buckets = NULL;
    pthread_mutex_destroy(&cache->lock);
}

uint64_t answers_drop(struct answer_cache *cache)
{
    pthread_mutex_lock(&cache->lock);
    uint64_t generation = ++cache->generation;
    if (cache->count)
        free_entries(cache);
    pthread_mutex_unlock(&cache->lock);
    return generation;
}

uint64_t answers_generation(struct answer_cache *cache)
{
    pthread_mutex_lock(&cache->lock);
    uint64_t generation = cache->generation;
    pthread_mutex_unlock(&cache->lock);
    return generation;
}

int answers_store(struct answer_cache *cache, const char *path, size_t length,
                  const unsigned char *stat_bytes, const unsigned char *statx_bytes,
                  int is_symlink, int64_t deadline_ns, uint64_t generation)
{
    struct answer_entry *fresh = malloc(sizeof(*fresh) + length + 1);
    if (!fresh)
        return -ENOMEM;
    fresh->hash = path_hash(path, length);
    fresh->deadline_ns = deadline_ns;
    fresh->is_symlink = is_symlink;
    fresh->length = length;
    memcpy(fresh->stat_bytes, stat_bytes, ANSWER_STAT_SIZE);
    memcpy(fresh->statx_bytes, statx_bytes, ANSWER_STATX_SIZE);
    memcpy(fresh->path, path, length);
    fresh->path[length] = '\0';
    pthread_mutex_lock(&cache->lock);
    if (generation != cache->generation ||
        !__atomic_load_n(&cache->ids_uniform, __ATOMIC_SEQ_CST)) {
        pthread_mutex_unlock(&cache->lock);
        free(fresh);
        return 1; /* computed before the last drop: may be stale */
    }
    if (cache->count >= ANSWER_LIMIT)
        free_entries(cache);
    struct answer_entry **slot = &cache->buckets[fresh->hash & (ANSWER_BUCKETS - 1)];
    for (struct answer_entry **link = slot; *link; link = &(*link)->next) {
        struct answer_entry *old = *link;
        if (old->hash == fresh->hash && old->length == length &&
            memcmp(old->path, path, length) == 0) {
            *link = old->next;
            free(old);
            cache->count--;
            break;
        }
    }
    fresh->next = *slot;
    *slot = fresh;
    cache->count++;
    pthread_mutex_unlock(&cache->lock);
    return 0;
}

/* Copies the answer for `key` into `out` (size bytes, from the stat or statx part);
 * 1 when found, fresh and usable with `follow`. */
static int lookup(struct answer_cache *cache, const char *key, size_t length, int follow,
                  int want_statx, unsigned char *out)
{
    uint64_t hash = path_hash(key, length);
    int64_t now = monotonic_ns();
    int found = 0;
    pthread_mutex_lock(&cache->lock);
    for (struct answer_entry *entry = cache->buckets[hash & (ANSWER_BUCKETS - 1)]; entry;
         entry = entry->next) {
        if (entry->hash != hash || entry->length != length || memcmp(entry->path, key, length))
            continue;
        if (entry->deadline_ns > now && !(follow && entry->is_symlink)) {
            if (want_statx)
                memcpy(out, entry->statx_bytes, ANSWER_STATX_SIZE);
            else
                memcpy(out, entry->stat_bytes, ANSWER_STAT_SIZE);
            found = 1;
        }
        break;
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

/* The key a caller's path stands for: itself if absolute, else its real base's name joined
 * with it.  0 on success. */
static int caller_key(pid_t tid, int dirfd, const char *path, char *key, size_t size)
{
    size_t path_length = strlen(path);
    if (path[0] == '/') {
        if (path_length + 1 > size)
            return -1;
        memcpy(key, path, path_length + 1);
        return 0;
    }
    char link[64];
    if (dirfd == AT_FDCWD)
        snprintf(link, sizeof(link), "/proc/%d/cwd", (int)tid);
    else if (dirfd >= 0)
        snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)tid, dirfd);
    else
        return -1;
    ssize_t n = readlink(link, key, size - 1);
    if (n <= 0 || key[0] != '/')
        return -1; /* gone, or a socket/pipe: not a real directory */
    key[n] = '\0';
    static const char deleted[] = " (deleted)";
    if ((size_t)n >= sizeof(deleted) - 1 && strcmp(key + n - (sizeof(deleted) - 1), deleted) == 0)
        return -1;
    if (n == 1)
        n = 0; /* "/" + "/" + path would double the slash */
    if ((size_t)n + 1 + path_length + 1 > size)
        return -1;
    key[n] = '/';
    memcpy(key + n + 1, path, path_length + 1);
    return 0;
}

int answers_serve(struct answer_cache *cache, int listener_fd, const struct seccomp_notif *notif,
                  int role)
{
    if (!__atomic_load_n(&cache->count, __ATOMIC_RELAXED) ||
        !__atomic_load_n(&cache->ids_uniform, __ATOMIC_RELAXED))
        return 0;
    const uint64_t *args = notif->data.args;
    uint64_t path_address, buffer;
    int dirfd = AT_FDCWD, follow = 1, want_statx = 0;
    switch (role) {
    case ROLE_STAT:
    case ROLE_LSTAT:
        path_address = args[0];
        buffer = args[1];
        follow = role == ROLE_STAT;
        break;
    case ROLE_NEWFSTATAT: {
        int flags = (int)args[3];
        if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH))
            return 0; /* EINVAL is the kernel's (or Python's) to give */
        dirfd = (int)args[0];
        path_address = args[1];
        buffer = args[2];
        follow = !(flags & AT_SYMLINK_NOFOLLOW);
        break;
    }
    case ROLE_STATX: {
        int flags = (int)args[2];
        uint32_t mask = (uint32_t)args[3];
        int valid = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE;
        if (flags & ~valid || (flags & AT_STATX_SYNC_TYPE) == AT_STATX_SYNC_TYPE ||
            flags & AT_STATX_FORCE_SYNC || mask & STATX_RESERVED_BIT)
            return 0; /* EINVAL, or a caller who insists on asking the file system */
        dirfd = (int)args[0];
        path_address = args[1];
        buffer = args[4];
        follow = !(flags & AT_SYMLINK_NOFOLLOW);
        want_statx = 1;
        break;
    }
    default:
        return 0;
    }
    pid_t tid = (pid_t)notif->pid;
    char path[PATH_MAX + 1], key[2 * PATH_MAX + 2];
    if (!path_address || mem_read_string(tid, path_address, path, sizeof(path)) <= 0)
        return 0;
    if (caller_key(tid, dirfd, path, key, sizeof(key)) < 0)
        return 0;
    unsigned char answer[ANSWER_STATX_SIZE];
    if (!lookup(cache, key, strlen(key), follow, want_statx, answer))
        return 0;
    /* The notification still pending means its thread is alive and its id its own. */
    uint64_t id = notif->id;
    if (notify_ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0)
        return 1; /* gone meanwhile: nobody to answer */
    ssize_t written = mem_write(tid, buffer, answer, want_statx ? ANSWER_STATX_SIZE
                                                                : ANSWER_STAT_SIZE);
    struct seccomp_notif_resp response = {notif->id, 0, 0, 0};
    if (written < 0) {
        if (written == -ESRCH)
            return 1;
        response.error = -EFAULT;
    }
    notify_ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, &response);
    return 1;
}

void answers_watch_ids(struct answer_cache *cache, const struct seccomp_notif *notif,
                       const struct syscall_role *role)
{
    if (!__atomic_load_n(&cache->ids_uniform, __ATOMIC_SEQ_CST))
        return;
    const uint64_t *args = notif->data.args;
    int keeps = 1;
    if (role->role == ROLE_SET_UIDS || role->role == ROLE_SET_GIDS) {
        uint32_t own = role->role == ROLE_SET_UIDS ? (uint32_t)cache->uid : (uint32_t)cache->gid;
        for (int i = 0; i < role->count && i < 6; i++) {
            uint32_t value = (uint32_t)args[i];
            if (value != UINT32_MAX && value != own)
                keeps = 0;
        }
    } else if (role->role == ROLE_SETGROUPS) {
        int size = (int)args[0];
        gid_t groups[GROUPS_MAX];
        keeps = size >= 0 && size <= GROUPS_MAX;
        if (keeps && size > 0) {
            size_t bytes = (size_t)size * sizeof(gid_t);
            keeps = mem_read(notif->pid, args[1], groups, bytes) == (ssize_t)bytes;
        }
        if (keeps) {
            int count = size > 0 ? normalize_groups(groups, size) : 0;
            pthread_mutex_lock(&cache->lock);
            keeps = count == cache->group_count &&
                    memcmp(groups, cache->groups, sizeof(gid_t) * (size_t)count) == 0;
            pthread_mutex_unlock(&cache->lock);
        }
    } else {
        keeps = 0;
    }
    if (!keeps) {
        /* Before the syscall runs: from now on nobody is assumed to have our identity. */
        __atomic_store_n(&cache->ids_uniform, 0, __ATOMIC_SEQ_CST);
        answers_drop(cache);
    }
}
