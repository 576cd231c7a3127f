/*
 * Tracee memory through /proc/TID/mem: one cached fd per thread id, reopened once when a
 * transfer fails or comes back empty (an exec or a dead thread leaves the old fd pointing
 * at a dead mm).  A thread id reused while the old thread's mm is still alive (another
 * thread of the old process) would read the wrong mm: Python calls forget_pid() when it
 * sees a thread go, and the listener thread never uses this cache (it reads with
 * process_vm_readv, which resolves the thread id at every call).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tracer.h"

#define PAGE 4096u
#define FIRST_CHUNK 256u

void mem_cache_init(struct mem_cache *cache)
{
    memset(cache, 0, sizeof(*cache));
    pthread_mutex_init(&cache->lock, NULL);
    for (int i = 0; i < MEM_CACHE_SLOTS; i++)
        cache->slots[i].fd = -1;
}

void mem_cache_destroy(struct mem_cache *cache)
{
    for (int i = 0; i < MEM_CACHE_SLOTS; i++) {
        if (cache->slots[i].fd >= 0)
            close(cache->slots[i].fd);
        cache->slots[i].fd = -1;
        cache->slots[i].tid = 0;
    }
    pthread_mutex_destroy(&cache->lock);
}

static int open_mem(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)tid);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EPERM))
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    return fd;
}

/* With the lock held: the fd for tid, opening (fresh=1: reopening) it as needed. */
static int slot_fd(struct mem_cache *cache, pid_t tid, int fresh)
{
    unsigned index = (unsigned)tid % MEM_CACHE_SLOTS;
    if (cache->slots[index].tid == tid && cache->slots[index].fd >= 0 && !fresh)
        return cache->slots[index].fd;
    if (cache->slots[index].fd >= 0)
        close(cache->slots[index].fd);
    cache->slots[index].fd = -1;
    cache->slots[index].tid = 0;
    int fd = open_mem(tid);
    if (fd < 0)
        return fd;
    cache->slots[index].fd = fd;
    cache->slots[index].tid = tid;
    return fd;
}

void mem_cache_forget(struct mem_cache *cache, pid_t tid)
{
    pthread_mutex_lock(&cache->lock);
    unsigned index = (unsigned)tid % MEM_CACHE_SLOTS;
    if (cache->slots[index].tid == tid) {
        if (cache->slots[index].fd >= 0)
            close(cache->slots[index].fd);
        cache->slots[index].fd = -1;
        cache->slots[index].tid = 0;
    }
    pthread_mutex_unlock(&cache->lock);
}

/* One pread/pwrite with the retry-once rule; returns bytes or -errno. */
static ssize_t transfer(struct mem_cache *cache, pid_t tid, uint64_t addr, void *buf,
                        size_t size, int writing)
{
    if (size == 0)
        return 0;
    if (addr > (uint64_t)INT64_MAX)
        return -EFAULT; /* pread's offset is signed: kernel addresses are never readable */
    ssize_t result = -EFAULT;
    pthread_mutex_lock(&cache->lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = slot_fd(cache, tid, attempt);
        if (fd < 0) {
            result = fd;
            break;
        }
        ssize_t n = writing ? pwrite(fd, buf, size, (off_t)addr)
                            : pread(fd, buf, size, (off_t)addr);
        if (n > 0) {
            result = n;
            break;
        }
        result = (n < 0 && errno != EIO) ? -errno : -EFAULT;
    }
    pthread_mutex_unlock(&cache->lock);
    return result;
}

ssize_t mem_read(struct mem_cache *cache, pid_t tid, uint64_t addr, void *buf, size_t size)
{
    return transfer(cache, tid, addr, buf, size, 0);
}

ssize_t mem_write(struct mem_cache *cache, pid_t tid, uint64_t addr, const void *buf,
                  size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = transfer(cache, tid, addr + done, (void *)((const char *)buf + done),
                             size - done, 1);
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

typedef ssize_t (*chunk_reader)(void *context, pid_t tid, uint64_t addr, void *buf,
                                size_t size);

/* Page by page, so that a string ending just before an unmapped page reads fine. */
static ssize_t read_string_with(chunk_reader reader, void *context, pid_t tid, uint64_t addr,
                                char *buf, size_t limit)
{
    size_t got = 0;
    while (got < limit) {
        uint64_t at = addr + got;
        size_t chunk = PAGE - (size_t)(at % PAGE);
        if (got == 0 && chunk > FIRST_CHUNK)
            chunk = FIRST_CHUNK; /* most paths are short: copy less first */
        if (chunk > limit - got)
            chunk = limit - got;
        ssize_t n = reader(context, tid, at, buf + got, chunk);
        if (n <= 0)
            return n < 0 ? n : -EFAULT;
        char *nul = memchr(buf + got, '\0', (size_t)n);
        if (nul)
            return nul - buf;
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}

static ssize_t cached_reader(void *context, pid_t tid, uint64_t addr, void *buf, size_t size)
{
    return transfer(context, tid, addr, buf, size, 0);
}

ssize_t mem_read_string(struct mem_cache *cache, pid_t tid, uint64_t addr, char *buf,
                        size_t limit)
{
    return read_string_with(cached_reader, cache, tid, addr, buf, limit);
}

static ssize_t direct_reader(void *context, pid_t tid, uint64_t addr, void *buf, size_t size)
{
    (void)context;
    struct iovec local = {buf, size};
    struct iovec remote = {(void *)(uintptr_t)addr, size};
    ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
    return n < 0 ? -errno : n;
}

ssize_t mem_read_string_direct(pid_t tid, uint64_t addr, char *buf, size_t limit)
{
    return read_string_with(direct_reader, NULL, tid, addr, buf, limit);
}
