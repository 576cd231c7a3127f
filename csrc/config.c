/*
 * Fast-path configuration: watched prefixes, special names and the set of virtual socket
 * inodes.  Python writes it (under the write lock), the listener thread reads it (under the
 * read lock) once per notification.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tracer.h"

#define INODE_EMPTY 0
#define INODE_DELETED UINT64_MAX

int config_init(struct fastpath_config *config)
{
    memset(config, 0, sizeof(*config));
    int pair[2];
    struct stat st;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
        if (fstat(pair[0], &st) == 0)
            config->sockfs_dev = st.st_dev;
        close(pair[0]);
        close(pair[1]);
    }
    config->generation = 1;
    config->name_cache = calloc(NAME_CACHE_SLOTS, sizeof(*config->name_cache));
    pthread_mutex_init(&config->name_cache_lock, NULL);
    /* The variable exists for the tests of the fallback (one fstat per judgement). */
    const char *no_inotify = getenv("VUFUSE_TRACER_NO_INOTIFY");
    config->inotify_fd = no_inotify && *no_inotify ? -1 : inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    int error = pthread_rwlock_init(&config->lock, NULL);
    return error ? -error : 0;
}

/* A directory (given by an O_PATH fd) with nothing in it but "." and "..". */
static int empty_directory(int path_fd)
{
    int fd = openat(path_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    DIR *directory = fdopendir(fd);
    if (!directory) {
        close(fd);
        return 0;
    }
    int empty = 1;
    struct dirent *entry;
    while (empty && (entry = readdir(directory)))
        if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, ".."))
            empty = 0;
    closedir(directory);
    return empty;
}

void prefix_refresh(struct prefix_identity *prefix)
{
    struct stat st;
    if (prefix->kind == PREFIX_MISSING || fstat(prefix->fd, &st) < 0)
        return;
    if (st.st_mtim.tv_sec == prefix->mtime.tv_sec && st.st_mtim.tv_nsec == prefix->mtime.tv_nsec &&
        st.st_ctim.tv_sec == prefix->ctime.tv_sec && st.st_ctim.tv_nsec == prefix->ctime.tv_nsec &&
        st.st_nlink == prefix->nlink && st.st_size == prefix->size)
        return;
    /* Judge emptiness after taking the times: a change racing with the scan shows next time. */
    prefix->mtime = st.st_mtim;
    prefix->ctime = st.st_ctim;
    prefix->nlink = st.st_nlink;
    prefix->size = st.st_size;
    prefix->kind = empty_directory(prefix->fd) ? PREFIX_EMPTY : PREFIX_NONEMPTY;
}

void config_drain_events(struct fastpath_config *config)
{
    char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    pthread_rwlock_wrlock(&config->lock);
    for (;;) {
        ssize_t n = read(config->inotify_fd, buffer, sizeof(buffer));
        if (n <= 0)
            break;
        for (ssize_t at = 0; at < n;) {
            const struct inotify_event *event = (const struct inotify_event *)(buffer + at);
            at += (ssize_t)(sizeof(*event) + event->len);
            for (size_t i = 0; i < config->identity_count; i++) {
                struct prefix_identity *prefix = &config->identities[i];
                if (prefix->watch != event->wd)
                    continue;
                if (event->mask & (IN_CREATE | IN_MOVED_TO)) {
                    prefix->kind = PREFIX_NONEMPTY; /* no scan needed */
                } else {
                    prefix->nlink = 0; /* force the re-judgement */
                    prefix_refresh(prefix);
                }
                if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
                    config->all_watched = 0; /* the directory went: fstat from now on */
            }
        }
    }
    pthread_rwlock_unlock(&config->lock);
}

void config_set_prefixes(struct fastpath_config *config, struct string_list *fresh)
{
    struct prefix_identity *identities = calloc(fresh->count ? fresh->count : 1,
                                                sizeof(*identities));
    size_t missing = 0;
    int watch_all = 0, all_watched = config->inotify_fd >= 0;
    for (size_t i = 0; i < fresh->count; i++) {
        struct stat st;
        if (fresh->lengths[i] == 1 && fresh->items[i][0] == '/')
            watch_all = 1;
        if (!identities)
            continue;
        identities[i].watch = -1;
        identities[i].fd = open(fresh->items[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (identities[i].fd < 0 || fstat(identities[i].fd, &st) < 0) {
            identities[i].kind = PREFIX_MISSING;
            missing++;
        } else {
            identities[i].dev = st.st_dev;
            identities[i].ino = st.st_ino;
            identities[i].kind = PREFIX_NONEMPTY;
            /* Watch first, judge second: a change in between shows as an event. */
            if (config->inotify_fd >= 0)
                identities[i].watch = inotify_add_watch(
                    config->inotify_fd, fresh->items[i],
                    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                        IN_MOVE_SELF | IN_ONLYDIR);
            if (identities[i].watch < 0)
                all_watched = 0;
            prefix_refresh(&identities[i]);
        }
    }
    if (!identities)
        watch_all = 1; /* out of memory: be conservative */
    size_t fresh_count = fresh->count;
    pthread_rwlock_wrlock(&config->lock);
    struct string_list old = config->prefixes;
    struct prefix_identity *old_identities = config->identities;
    config->prefixes = *fresh;
    config->identities = identities;
    config->identity_count = identities ? fresh->count : 0;
    config->missing_count = missing;
    config->watch_all = watch_all;
    config->all_watched = all_watched;
    config->generation++;
    pthread_rwlock_unlock(&config->lock);
    for (size_t i = 0; old_identities && i < old.count; i++) {
        if (old_identities[i].fd >= 0)
            close(old_identities[i].fd);
        /* The same directory may be watched by the new list under the same descriptor. */
        int shared = 0;
        for (size_t j = 0; identities && j < fresh_count; j++)
            shared |= identities[j].watch == old_identities[i].watch;
        if (old_identities[i].watch >= 0 && !shared)
            inotify_rm_watch(config->inotify_fd, old_identities[i].watch);
    }
    string_list_free(&old);
    free(old_identities);
    memset(fresh, 0, sizeof(*fresh));
}

void string_list_free(struct string_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    free(list->lengths);
    memset(list, 0, sizeof(*list));
}

void config_destroy(struct fastpath_config *config)
{
    string_list_free(&config->prefixes);
    string_list_free(&config->special_names);
    for (size_t i = 0; config->identities && i < config->identity_count; i++)
        if (config->identities[i].fd >= 0)
            close(config->identities[i].fd);
    free(config->identities);
    if (config->inotify_fd >= 0)
        close(config->inotify_fd);
    free(config->name_cache);
    pthread_mutex_destroy(&config->name_cache_lock);
    free(config->virtual_inodes.slots);
    free(config->stand_in_inodes.slots);
    pthread_rwlock_destroy(&config->lock);
}

void config_replace_list(struct fastpath_config *config, struct string_list *target,
                         struct string_list *fresh)
{
    struct string_list old;
    pthread_rwlock_wrlock(&config->lock);
    old = *target;
    *target = *fresh;
    pthread_rwlock_unlock(&config->lock);
    string_list_free(&old);
    memset(fresh, 0, sizeof(*fresh));
}

static size_t slot_of(uint64_t ino, size_t capacity)
{
    ino *= 0x9E3779B97F4A7C15ull; /* Fibonacci hashing spreads sequential inode numbers */
    return (size_t)(ino >> 20) & (capacity - 1);
}

static int inode_set_rehash(struct inode_set *set, size_t capacity)
{
    uint64_t *slots = calloc(capacity, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < set->capacity; i++) {
        uint64_t ino = set->slots[i];
        if (ino == INODE_EMPTY || ino == INODE_DELETED)
            continue;
        size_t j = slot_of(ino, capacity);
        while (slots[j] != INODE_EMPTY)
            j = (j + 1) & (capacity - 1);
        slots[j] = ino;
    }
    free(set->slots);
    set->slots = slots;
    set->capacity = capacity;
    set->used = set->live;
    return 0;
}

/* Inode 0 and UINT64_MAX are not real socket inodes; they are never members. */
int inode_set_add(struct inode_set *set, uint64_t ino)
{
    if (ino == INODE_EMPTY || ino == INODE_DELETED || inode_set_contains(set, ino))
        return 0;
    if ((set->used + 1) * 2 > set->capacity) {
        size_t capacity = 64;
        while ((set->live + 1) * 4 > capacity)
            capacity *= 2;
        int error = inode_set_rehash(set, capacity);
        if (error)
            return error;
    }
    size_t j = slot_of(ino, set->capacity);
    while (set->slots[j] != INODE_EMPTY && set->slots[j] != INODE_DELETED)
        j = (j + 1) & (set->capacity - 1);
    if (set->slots[j] == INODE_EMPTY)
        set->used++;
    set->slots[j] = ino;
    set->live++;
    return 0;
}

void inode_set_remove(struct inode_set *set, uint64_t ino)
{
    if (!set->capacity || ino == INODE_EMPTY || ino == INODE_DELETED)
        return;
    size_t j = slot_of(ino, set->capacity);
    while (set->slots[j] != INODE_EMPTY) {
        if (set->slots[j] == ino) {
            set->slots[j] = INODE_DELETED;
            set->live--;
            return;
        }
        j = (j + 1) & (set->capacity - 1);
    }
}

int inode_set_contains(const struct inode_set *set, uint64_t ino)
{
    if (!set->capacity || ino == INODE_EMPTY || ino == INODE_DELETED)
        return 0;
    size_t j = slot_of(ino, set->capacity);
    while (set->slots[j] != INODE_EMPTY) {
        if (set->slots[j] == ino)
            return 1;
        j = (j + 1) & (set->capacity - 1);
    }
    return 0;
}
