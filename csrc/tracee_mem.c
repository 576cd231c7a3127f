/*
 * Tracee memory, named by thread id and resolved at every call: process_vm_readv/writev,
 * with a freshly opened /proc/TID/mem only where those refuse (a write into a read-only
 * mapping, as a debugger does it).
 *
 * Nothing is cached on purpose.  A cached /proc/TID/mem fd stays bound to the mm of the
 * thread that had the id when it was opened; an id reused while that thread's process lives
 * (another of its threads keeps the mm) would then read and write the wrong process, and no
 * cheap test tells.  Resolving the id at each call costs ~0.3 us per transfer (measured in
 * docs/tracer-core.md) and leaves one question, which only the caller can answer: is the
 * thread that owned the id when the notification came still the one that owns it?  It is as
 * long as the notification is pending, which is what SECCOMP_IOCTL_NOTIF_ID_VALID after a
 * read (before a write) checks: the Python API does it when given the notification's id.
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

/* One process_vm_readv/writev; bytes (possibly fewer: it stops at the first page it can't
 * reach) or -errno. */
static ssize_t transfer_direct(pid_t tid, uint64_t addr, void *buf, size_t size, int writing)
{
    struct iovec local = {buf, size};
    struct iovec remote = {(void *)(uintptr_t)addr, size};
    ssize_t n = writing ? process_vm_writev(tid, &local, 1, &remote, 1, 0)
                        : process_vm_readv(tid, &local, 1, &remote, 1, 0);
    return n < 0 ? -errno : n;
}

/* Through a /proc/TID/mem opened for this one transfer (FOLL_FORCE: read-only and
 * PROT_NONE pages too). */
static ssize_t transfer_proc(pid_t tid, uint64_t addr, void *buf, size_t size, int writing)
{
    if (addr > (uint64_t)INT64_MAX)
        return -EFAULT; /* pread's offset is signed: kernel addresses are never reachable */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)tid);
    int fd = open(path, (writing ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    ssize_t n = writing ? pwrite(fd, buf, size, (off_t)addr) : pread(fd, buf, size, (off_t)addr);
    ssize_t result = n > 0 ? n : (n < 0 && errno != EIO) ? -errno : -EFAULT;
    close(fd);
    return result;
}

ssize_t mem_read(pid_t tid, uint64_t addr, void *buf, size_t size)
{
    if (size == 0)
        return 0;
    ssize_t n = transfer_direct(tid, addr, buf, size, 0);
    if (n == -EPERM || n == -ENOSYS) /* e.g. a kernel without CONFIG_CROSS_MEMORY_ATTACH */
        n = transfer_proc(tid, addr, buf, size, 0);
    return n == 0 ? -EFAULT : n;
}

ssize_t mem_write(pid_t tid, uint64_t addr, const void *buf, size_t size)
{
    size_t done = 0;
    while (done < size) {
        void *at = (void *)((const char *)buf + done);
        ssize_t n = transfer_direct(tid, addr + done, at, size - done, 1);
        if (n == -EFAULT || n == -EPERM || n == -ENOSYS || n == 0)
            n = transfer_proc(tid, addr + done, at, size - done, 1); /* read-only page? */
        if (n < 0)
            return n;
        if (n == 0)
            return -EFAULT;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Page by page, so that a string ending just before an unmapped page reads fine. */
ssize_t mem_read_string(pid_t tid, uint64_t addr, char *buf, size_t limit)
{
    size_t got = 0;
    while (got < limit) {
        uint64_t at = addr + got;
        size_t chunk = PAGE - (size_t)(at % PAGE);
        if (got == 0 && chunk > FIRST_CHUNK)
            chunk = FIRST_CHUNK; /* most paths are short: copy less first */
        if (chunk > limit - got)
            chunk = limit - got;
        ssize_t n = mem_read(tid, at, buf + got, chunk);
        if (n <= 0)
            return n < 0 ? n : -EFAULT;
        char *nul = memchr(buf + got, '\0', (size_t)n);
        if (nul)
            return nul - buf;
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}
