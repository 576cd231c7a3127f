/*
 * hypervisor._tracer: the Tracer methods used while serving a session: answering
 * notifications, the fast-path configuration, tracee memory and the counters.
 */
#include "tracer_object.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* ---------- notifications ---------- */

PyDoc_STRVAR(Tracer_fileno_doc,
"fileno() -> int\n\n"
"An eventfd that is readable while the slow-path queue is non-empty: wait for it with\n"
"trio.lowlevel.wait_readable(), then call take().");

static PyObject *Tracer_fileno(TracerObject *self, PyObject *unused)
{
    (void)unused;
    REQUIRE_INIT(self);
    return PyLong_FromLong(self->listener.event_fd);
}

PyDoc_STRVAR(Tracer_take_doc,
"take() -> list[Notification]\n\n"
"Drain the slow-path queue without blocking (oldest first) and reset the eventfd.");

static PyObject *Tracer_take(TracerObject *self, PyObject *unused)
{
    (void)unused;
    REQUIRE_INIT(self);
    struct queued_notification *items;
    size_t count = listener_take(&self->listener, &items);
    PyObject *list = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; list && i < count; i++) {
        PyObject *notification = notification_new(&items[i]);
        if (!notification) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, notification);
    }
    free(items);
    return list;
}

static int listener_fd_or_raise(TracerObject *self)
{
    if (!self->initialized || self->listener.listener_fd < 0) {
        raise_errno(EBADF);
        return -1;
    }
    return self->listener.listener_fd;
}

PyDoc_STRVAR(Tracer_respond_doc,
"respond(id, value=0, error=0, continue_=False) -> None\n\n"
"Answer a notification (SECCOMP_IOCTL_NOTIF_SEND): the syscall returns `value`, or fails\n"
"with the positive errno `error`, or (continue_=True) runs natively as if never trapped.\n"
"Raises OSError(ENOENT) if the tracee is gone or no longer waiting (e.g. interrupted).");

static PyObject *Tracer_respond(TracerObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"id", "value", "error", "continue_", NULL};
    unsigned long long id;
    long long value = 0;
    int error = 0, continue_ = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "K|Lip:respond", keywords, &id, &value,
                                     &error, &continue_))
        return NULL;
    int fd = listener_fd_or_raise(self);
    if (fd < 0)
        return NULL;
    if (error < 0) {
        PyErr_SetString(PyExc_ValueError, "error must be a positive errno (or 0)");
        return NULL;
    }
    struct seccomp_notif_resp response = {
        .id = id,
        .val = continue_ ? 0 : value,
        .error = continue_ ? 0 : -error,
        .flags = continue_ ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0,
    };
    if (notify_ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &response) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Tracer_addfd_doc,
"addfd(id, srcfd, newfd=-1, cloexec=False, send=False) -> int\n\n"
"Install a duplicate of our fd `srcfd` in the tracee (SECCOMP_IOCTL_NOTIF_ADDFD).  newfd >= 0\n"
"places it at that number, replacing whatever was there (SETFD; it must lie below the\n"
"tracee's RLIMIT_NOFILE); else the lowest free number.  send=True also answers the\n"
"notification with the new fd number once it is installed (ADDFD, then SEND).  Returns the\n"
"number in the tracee.");

static PyObject *Tracer_addfd(TracerObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"id", "srcfd", "newfd", "cloexec", "send", NULL};
    unsigned long long id;
    int srcfd, newfd = -1, cloexec = 0, send = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Ki|ipp:addfd", keywords, &id, &srcfd,
                                     &newfd, &cloexec, &send))
        return NULL;
    int fd = listener_fd_or_raise(self);
    if (fd < 0)
        return NULL;
    /* Never SECCOMP_ADDFD_FLAG_SEND: when a signal to us (a stop, a ptrace interrupt)
     * interrupts that ioctl before the tracee installed the fd, the kernel withdraws the
     * request but leaves the notification marked replied, so the tracee's syscall returns 0
     * (fd 0!) and the restarted ioctl fails EINPROGRESS.  Two steps instead: the tracee waits
     * killably once we have received its notification (WAIT_KILLABLE_RECV), so nothing but
     * its death comes between them, and an interrupted ADDFD alone is withdrawn or done,
     * never half done. */
    struct seccomp_notif_addfd request = {
        .id = id,
        .flags = newfd >= 0 ? SECCOMP_ADDFD_FLAG_SETFD : 0,
        .srcfd = (unsigned int)srcfd,
        .newfd = newfd >= 0 ? (unsigned int)newfd : 0,
        .newfd_flags = cloexec ? O_CLOEXEC : 0,
    };
    int result = notify_ioctl(fd, SECCOMP_IOCTL_NOTIF_ADDFD, &request);
    if (result < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (send) {
        struct seccomp_notif_resp response = {.id = id, .val = result};
        /* ENOENT: killed since the ADDFD; the fd dies with its table, as on the kernel. */
        if (notify_ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &response) < 0 && errno != ENOENT)
            return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(result);
}

PyDoc_STRVAR(Tracer_id_valid_doc,
"id_valid(id) -> bool\n\n"
"Whether the notification is still pending (SECCOMP_IOCTL_NOTIF_ID_VALID): call it after\n"
"reading tracee memory to be sure the pid was not reused meanwhile.");

static PyObject *Tracer_id_valid(TracerObject *self, PyObject *arg)
{
    unsigned long long id = PyLong_AsUnsignedLongLong(arg);
    if (id == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int fd = listener_fd_or_raise(self);
    if (fd < 0)
        return NULL;
    __u64 value = id;
    if (notify_ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &value) == 0)
        Py_RETURN_TRUE;
    if (errno == ENOENT)
        Py_RETURN_FALSE;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* ---------- fast-path configuration ---------- */

static int add_string(struct string_list *list, const char *text, size_t length)
{
    char **items = realloc(list->items, (list->count + 1) * sizeof(char *));
    if (!items)
        return -1;
    list->items = items;
    size_t *lengths = realloc(list->lengths, (list->count + 1) * sizeof(size_t));
    if (!lengths)
        return -1;
    list->lengths = lengths;
    char *copy = strndup(text, length);
    if (!copy)
        return -1;
    list->items[list->count] = copy;
    list->lengths[list->count] = length;
    list->count++;
    return 0;
}

/* Builds a string list from a Python sequence of bytes/str; prefixes are normalized. */
static int build_list(PyObject *sequence_object, struct string_list *list, int prefixes)
{
    memset(list, 0, sizeof(*list));
    PyObject *sequence = PySequence_Fast(sequence_object, "expected a sequence");
    if (!sequence)
        return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); i++) {
        PyObject *bytes = NULL;
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(sequence, i), &bytes))
            goto fail;
        const char *text = PyBytes_AS_STRING(bytes);
        size_t length = (size_t)PyBytes_GET_SIZE(bytes);
        if (prefixes) {
            if (text[0] != '/') {
                Py_DECREF(bytes);
                PyErr_SetString(PyExc_ValueError, "watched prefixes must be absolute");
                goto fail;
            }
            while (length > 1 && text[length - 1] == '/')
                length--;
        } else if (!length || memchr(text, '/', length)) {
            Py_DECREF(bytes);
            PyErr_SetString(PyExc_ValueError, "special names are single path components");
            goto fail;
        }
        int failed = add_string(list, text, length);
        if (!failed && prefixes) {
            /* Canonical paths are compared: watch the resolved form too. */
            char resolved[PATH_MAX];
            char *copy = strndup(text, length);
            if (copy && realpath(copy, resolved) && strcmp(resolved, copy) != 0)
                failed = add_string(list, resolved, strlen(resolved));
            free(copy);
        }
        Py_DECREF(bytes);
        if (failed) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    Py_DECREF(sequence);
    return 0;
fail:
    Py_DECREF(sequence);
    string_list_free(list);
    return -1;
}

PyDoc_STRVAR(Tracer_set_prefixes_doc,
"set_prefixes(prefixes) -> None\n\n"
"Replace the watched prefix list (absolute paths, bytes or str; trailing slashes ignored;\n"
"when a prefix resolves through a symlink its canonical form is watched as well).  A path\n"
"argument that may resolve to or under one of them is queued (REASON_PATH).  An empty\n"
"list disables path resolution.  Takes effect for the next notification.");

static PyObject *Tracer_set_prefixes(TracerObject *self, PyObject *arg)
{
    REQUIRE_INIT(self);
    struct string_list fresh;
    if (build_list(arg, &fresh, 1) < 0)
        return NULL;
    config_set_prefixes(&self->config, &fresh);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Tracer_set_special_names_doc,
"set_special_names(names) -> None\n\n"
"Replace the special-name list: a path argument whose last component (lexically) is one of\n"
"these is always queued (REASON_SPECIAL), wherever it points.");

static PyObject *Tracer_set_special_names(TracerObject *self, PyObject *arg)
{
    REQUIRE_INIT(self);
    struct string_list fresh;
    if (build_list(arg, &fresh, 0) < 0)
        return NULL;
    config_replace_list(&self->config, &self->config.special_names, &fresh);
    Py_RETURN_NONE;
}

/* Add (`add`) or remove inode `arg` in one of the configuration's inode sets, under the
 * configuration's lock (the listener thread reads them). */
static PyObject *change_inode_set(TracerObject *self, PyObject *arg, struct inode_set *set,
                                  int add)
{
    unsigned long long ino = PyLong_AsUnsignedLongLong(arg);
    if (ino == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    pthread_rwlock_wrlock(&self->config.lock);
    int error = 0;
    if (add)
        error = inode_set_add(set, ino);
    else
        inode_set_remove(set, ino);
    pthread_rwlock_unlock(&self->config.lock);
    if (error)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Tracer_add_virtual_inode_doc,
"add_virtual_inode(ino) -> None\n\n"
"Mark a socket inode as a virtual file: an fd argument >= fd_base, a dirfd, or a path\n"
"(/proc/PID/fd/N, /dev/stdin...) that resolves to it is queued.");

static PyObject *Tracer_add_virtual_inode(TracerObject *self, PyObject *arg)
{
    REQUIRE_INIT(self);
    return change_inode_set(self, arg, &self->config.virtual_inodes, 1);
}

PyDoc_STRVAR(Tracer_remove_virtual_inode_doc,
"remove_virtual_inode(ino) -> None\n\nForget a virtual socket inode (no error if absent).");

static PyObject *Tracer_remove_virtual_inode(TracerObject *self, PyObject *arg)
{
    REQUIRE_INIT(self);
    return change_inode_set(self, arg, &self->config.virtual_inodes, 0);
}

PyDoc_STRVAR(Tracer_add_stand_in_inode_doc,
"add_stand_in_inode(ino) -> None\n\n"
"Mark a memfd inode as a low-fd stand-in of a virtual file: an ACTION_TRAP_LOWFD call whose\n"
"fd argument below fd_base is a regular file with this inode is queued (REASON_FD).");

static PyObject *Tracer_add_stand_in_inode(TracerObject *self, PyObject *arg)
{
    REQUIRE_INIT(self);
    return change_inode_set(self, arg, &self->config.stand_in_inodes, 1);
}

PyDoc_STRVAR(Tracer_remove_stand_in_inode_doc,
"remove_stand_in_inode(ino) -> None\n\nForget a stand-in's memfd inode (no error if absent).");

static PyObject *Tracer_remove_stand_in_inode(TracerObject *self, PyObject *arg)
{
    REQUIRE_INIT(self);
    return change_inode_set(self, arg, &self->config.stand_in_inodes, 0);
}

PyDoc_STRVAR(Tracer_path_is_watched_doc,
"_path_is_watched(pid, path, dirfd=AT_FDCWD) -> bool\n\n"
"The fast path's path rule alone, as the listener would apply it to thread `pid` (tests).");

static PyObject *Tracer_path_is_watched(TracerObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"pid", "path", "dirfd", NULL};
    int pid, dirfd = AT_FDCWD;
    PyObject *path_bytes;
    REQUIRE_INIT(self);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO&|i:_path_is_watched", keywords, &pid,
                                     PyUnicode_FSConverter, &path_bytes, &dirfd))
        return NULL;
    int watched;
    const char *path = PyBytes_AS_STRING(path_bytes);
    Py_BEGIN_ALLOW_THREADS
    if (self->config.inotify_fd >= 0)
        config_drain_events(&self->config);
    pthread_rwlock_rdlock(&self->config.lock);
    watched = fastpath_path_is_watched(&self->config, pid, dirfd, dirfd != AT_FDCWD, path);
    pthread_rwlock_unlock(&self->config.lock);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_bytes);
    return PyBool_FromLong(watched);
}

/* ---------- tracee memory ---------- */

/* The memory calls are the hot ones of the Python side: METH_FASTCALL, with their few
 * arguments sorted here (PyArg_ParseTupleAndKeywords costs ~0.2 us a call).  Fills out[i]
 * (borrowed; NULL for an optional argument not given) from positional arguments and
 * keywords named `names`; the first `required` are mandatory. */
static int sort_arguments(const char *function, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames, const char *const *names, int required, int total,
                          PyObject **out)
{
    if (nargs > total) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments", function, total);
        return -1;
    }
    for (int i = 0; i < total; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < keywords; k++) {
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
        if (!name)
            return -1;
        int i = 0;
        while (i < total && strcmp(names[i], name) != 0)
            i++;
        if (i == total || out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got %s keyword argument '%s'", function,
                         i == total ? "an unexpected" : "a repeated", name);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (int i = 0; i < required; i++) {
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing argument '%s'", function, names[i]);
            return -1;
        }
    }
    return 0;
}

/* pid and address, the first two arguments of every memory call. */
static int thread_and_address(PyObject *const *values, int *pid, unsigned long long *addr)
{
    *pid = as_int(values[0]);
    if (*pid == -1 && PyErr_Occurred())
        return -1;
    *addr = PyLong_AsUnsignedLongLong(values[1]);
    if (*addr == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    return 0;
}

/* With a notification id (`id` given and not None): 0 if it is still pending, else -1 with
 * OSError(ENOENT) set (the thread may be gone and its id reused: the bytes are not its). */
static int check_pending(TracerObject *self, PyObject *id_object)
{
    if (!id_object || id_object == Py_None)
        return 0;
    unsigned long long id = PyLong_AsUnsignedLongLong(id_object);
    if (id == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    int fd = listener_fd_or_raise(self);
    if (fd < 0)
        return -1;
    __u64 value = id;
    if (notify_ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &value) == 0)
        return 0;
    raise_errno(errno);
    return -1;
}

PyDoc_STRVAR(Tracer_read_mem_doc,
"read_mem(pid, addr, size, id=None) -> bytes\n\n"
"Read memory of thread `pid` (process_vm_readv: the thread id is resolved at this call).\n"
"May return fewer bytes than asked when the range runs into unmapped memory; raises\n"
"OSError(EFAULT) when no byte at addr is readable, OSError(ESRCH) when the thread is gone.\n"
"With `id` (the notification being served), raises OSError(ENOENT) unless the notification\n"
"is still pending after the read: then the bytes are surely the caller's, even if its\n"
"thread id could have been reused.");

static PyObject *Tracer_read_mem(TracerObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    static const char *const names[] = {"pid", "addr", "size", "id"};
    PyObject *values[4];
    int pid;
    unsigned long long addr;
    REQUIRE_INIT(self);
    if (sort_arguments("read_mem", args, nargs, kwnames, names, 3, 4, values) < 0 ||
        thread_and_address(values, &pid, &addr) < 0)
        return NULL;
    Py_ssize_t size = PyLong_AsSsize_t(values[2]);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, size);
    if (!result || size == 0)
        return result;
    ssize_t n;
    char *buffer = PyBytes_AS_STRING(result);
    /* The GIL is dropped even for a few bytes: a page of the tracee's may take a while
     * (swapped out, or a userfaultfd region whose handler is another tracee). */
    Py_BEGIN_ALLOW_THREADS
    n = mem_read(pid, addr, buffer, (size_t)size);
    Py_END_ALLOW_THREADS
    if (n < 0) {
        Py_DECREF(result);
        return raise_errno((int)-n);
    }
    if (check_pending(self, values[3]) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    if (n < size)
        _PyBytes_Resize(&result, n);
    return result;
}

PyDoc_STRVAR(Tracer_read_string_doc,
"read_string(pid, addr, limit=4097, id=None) -> bytes\n\n"
"Read a NUL-terminated string (NUL excluded) of at most `limit` bytes including the NUL.\n"
"OSError(EFAULT) on a bad pointer, OSError(ENAMETOOLONG) when no NUL comes within limit;\n"
"`id` as for read_mem.");

static PyObject *Tracer_read_string(TracerObject *self, PyObject *const *args,
                                    Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"pid", "addr", "limit", "id"};
    PyObject *values[4];
    int pid;
    unsigned long long addr;
    Py_ssize_t limit = PATH_MAX + 1;
    REQUIRE_INIT(self);
    if (sort_arguments("read_string", args, nargs, kwnames, names, 2, 4, values) < 0 ||
        thread_and_address(values, &pid, &addr) < 0)
        return NULL;
    if (values[2]) {
        limit = PyLong_AsSsize_t(values[2]);
        if (limit == -1 && PyErr_Occurred())
            return NULL;
    }
    if (limit <= 0) {
        PyErr_SetString(PyExc_ValueError, "limit must be positive");
        return NULL;
    }
    char *buffer = malloc((size_t)limit);
    if (!buffer)
        return PyErr_NoMemory();
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = mem_read_string(pid, addr, buffer, (size_t)limit);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (n < 0)
        raise_errno((int)-n);
    else if (check_pending(self, values[3]) == 0)
        result = PyBytes_FromStringAndSize(buffer, n);
    free(buffer);
    return result;
}

PyDoc_STRVAR(Tracer_write_mem_doc,
"write_mem(pid, addr, data, id=None) -> None\n\n"
"Write all of `data` into the memory of thread `pid` (process_vm_writev; read-only mappings\n"
"through /proc/PID/mem, as a debugger does).  OSError(EFAULT) on a bad pointer; a write\n"
"that faults midway may have stored a prefix.  With `id`, raises OSError(ENOENT) without\n"
"writing unless the notification is still pending.");

static PyObject *Tracer_write_mem(TracerObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"pid", "addr", "data", "id"};
    PyObject *values[4];
    int pid;
    unsigned long long addr;
    REQUIRE_INIT(self);
    if (sort_arguments("write_mem", args, nargs, kwnames, names, 3, 4, values) < 0 ||
        thread_and_address(values, &pid, &addr) < 0)
        return NULL;
    Py_buffer data;
    if (PyObject_GetBuffer(values[2], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (check_pending(self, values[3]) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = mem_write(pid, addr, data.buf, (size_t)data.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (n < 0)
        return raise_errno((int)-n);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Tracer_forget_pid_doc,
"forget_pid(pid) -> None\n\n"
"Does nothing: kept for callers of the earlier API, when /proc/PID/mem fds were cached per\n"
"thread id.  Memory is now reached by thread id at every call.");

static PyObject *Tracer_forget_pid(TracerObject *self, PyObject *arg)
{
    REQUIRE_INIT(self);
    int pid = as_int(arg);
    if (pid == -1 && PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* ---------- counters ---------- */

PyDoc_STRVAR(Tracer_stats_doc,
"stats() -> dict[str, int]\n\n"
"Counters of the listener thread: 'notifications', 'fast_continue', 'queued', 'dropped'\n"
"(tracee gone before the CONTINUE), 'queued_always', 'queued_fd', 'queued_special',\n"
"'queued_path', 'queued_cwd', 'answered' (served from the answer cache).");

static PyObject *Tracer_stats(TracerObject *self, PyObject *unused)
{
    (void)unused;
    REQUIRE_INIT(self);
    static const char *names[STAT_COUNT] = {
        [STAT_NOTIFICATIONS] = "notifications",   [STAT_FAST_CONTINUE] = "fast_continue",
        [STAT_QUEUED] = "queued",                 [STAT_DROPPED] = "dropped",
        [STAT_QUEUED_ALWAYS] = "queued_always",   [STAT_QUEUED_FD] = "queued_fd",
        [STAT_QUEUED_SPECIAL] = "queued_special", [STAT_QUEUED_PATH] = "queued_path",
        [STAT_QUEUED_CWD] = "queued_cwd",         [STAT_ANSWERED] = "answered",
    };
    PyObject *dict = PyDict_New();
    for (int i = 0; dict && i < STAT_COUNT; i++) {
        PyObject *value = PyLong_FromUnsignedLongLong(
            __atomic_load_n(&self->listener.stats[i], __ATOMIC_RELAXED));
        if (!value || PyDict_SetItemString(dict, names[i], value) < 0) {
            Py_XDECREF(value);
            Py_CLEAR(dict);
            break;
        }
        Py_DECREF(value);
    }
    return dict;
}

PyMethodDef tracer_call_methods[] = {
    {"fileno", (PyCFunction)Tracer_fileno, METH_NOARGS, Tracer_fileno_doc},
    {"take", (PyCFunction)Tracer_take, METH_NOARGS, Tracer_take_doc},
    {"respond", (PyCFunction)(void (*)(void))Tracer_respond, METH_VARARGS | METH_KEYWORDS,
     Tracer_respond_doc},
    {"addfd", (PyCFunction)(void (*)(void))Tracer_addfd, METH_VARARGS | METH_KEYWORDS,
     Tracer_addfd_doc},
    {"id_valid", (PyCFunction)Tracer_id_valid, METH_O, Tracer_id_valid_doc},
    {"set_prefixes", (PyCFunction)Tracer_set_prefixes, METH_O, Tracer_set_prefixes_doc},
    {"set_special_names", (PyCFunction)Tracer_set_special_names, METH_O,
     Tracer_set_special_names_doc},
    {"add_virtual_inode", (PyCFunction)Tracer_add_virtual_inode, METH_O,
     Tracer_add_virtual_inode_doc},
    {"remove_virtual_inode", (PyCFunction)Tracer_remove_virtual_inode, METH_O,
     Tracer_remove_virtual_inode_doc},
    {"add_stand_in_inode", (PyCFunction)Tracer_add_stand_in_inode, METH_O,
     Tracer_add_stand_in_inode_doc},
    {"remove_stand_in_inode", (PyCFunction)Tracer_remove_stand_in_inode, METH_O,
     Tracer_remove_stand_in_inode_doc},
    {"_path_is_watched", (PyCFunction)(void (*)(void))Tracer_path_is_watched,
     METH_VARARGS | METH_KEYWORDS, Tracer_path_is_watched_doc},
    {"read_mem", (PyCFunction)(void (*)(void))Tracer_read_mem, METH_FASTCALL | METH_KEYWORDS,
     Tracer_read_mem_doc},
    {"read_string", (PyCFunction)(void (*)(void))Tracer_read_string,
     METH_FASTCALL | METH_KEYWORDS, Tracer_read_string_doc},
    {"write_mem", (PyCFunction)(void (*)(void))Tracer_write_mem, METH_FASTCALL | METH_KEYWORDS,
     Tracer_write_mem_doc},
    {"forget_pid", (PyCFunction)Tracer_forget_pid, METH_O, Tracer_forget_pid_doc},
    {"stats", (PyCFunction)Tracer_stats, METH_NOARGS, Tracer_stats_doc},
    {NULL},
};
