/*
 * hypervisor._tracer: the Python face of the C tracing core (docs/tracer-core.md).
 *
 * This file holds the types, the Tracer's life cycle and its session methods; the calls made
 * while serving a session (answers, fast-path configuration, memory, counters) are in
 * tracer_calls.c.  The mechanisms live in bpf_filter.c (the seccomp program), spawn.c
 * (keeper and command), listener.c (listener thread and queue), fastpath.c (the CONTINUE
 * decision), config.c and tracee_mem.c.
 */
#include "tracer_object.h"

#include <structmember.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>


/* ======================================================================================
 * Notification
 * ==================================================================================== */

typedef struct {
    PyObject_HEAD
    unsigned long long id;
    unsigned int pid;
    int nr;
    PyObject *args;
    int reason;
    int fd;
    unsigned long long inode;
    unsigned long long received_ns;
} NotificationObject;

static void Notification_dealloc(NotificationObject *self)
{
    Py_XDECREF(self->args);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Notification_repr(NotificationObject *self)
{
    return PyUnicode_FromFormat("<Notification id=%llu pid=%u nr=%d reason=%d fd=%d inode=%llu>",
                                self->id, self->pid, self->nr, self->reason, self->fd,
                                self->inode);
}

static PyMemberDef Notification_members[] = {
    {"id", T_ULONGLONG, offsetof(NotificationObject, id), READONLY,
     "Notification id, for respond/addfd/id_valid."},
    {"pid", T_UINT, offsetof(NotificationObject, pid), READONLY,
     "Thread id of the caller (as the kernel reports it)."},
    {"nr", T_INT, offsetof(NotificationObject, nr), READONLY, "Syscall number."},
    {"args", T_OBJECT, offsetof(NotificationObject, args), READONLY,
     "The six arguments, as unsigned 64-bit integers."},
    {"reason", T_INT, offsetof(NotificationObject, reason), READONLY,
     "Why the fast path queued it: REASON_ALWAYS/FD/SPECIAL/PATH."},
    {"fd", T_INT, offsetof(NotificationObject, fd), READONLY,
     "For REASON_FD: the fd argument found virtual; else -1."},
    {"inode", T_ULONGLONG, offsetof(NotificationObject, inode), READONLY,
     "For REASON_FD: the socket inode of that fd; else 0."},
    {"received_ns", T_ULONGLONG, offsetof(NotificationObject, received_ns), READONLY,
     "time.monotonic_ns() when the listener thread read it: trap-to-answer latency."},
    {NULL},
};

static PyTypeObject NotificationType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hypervisor._tracer.Notification",
    .tp_basicsize = sizeof(NotificationObject),
    .tp_dealloc = (destructor)Notification_dealloc,
    .tp_repr = (reprfunc)Notification_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A trapped syscall that the fast path handed to Python (read-only).",
    .tp_members = Notification_members,
};

PyObject *notification_new(const struct queued_notification *item)
{
    NotificationObject *self = PyObject_New(NotificationObject, &NotificationType);
    if (!self)
        return NULL;
    self->id = item->id;
    self->pid = item->pid;
    self->nr = item->nr;
    self->reason = item->reason;
    self->fd = item->fd;
    self->inode = item->inode;
    self->received_ns = item->received_ns;
    self->args = Py_BuildValue("(KKKKKK)", item->args[0], item->args[1], item->args[2],
                               item->args[3], item->args[4], item->args[5]);
    if (!self->args) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* ======================================================================================
 * Tracer
 * ==================================================================================== */


/* An int argument (the private _PyLong_AsInt is gone in Python 3.13). */
int as_int(PyObject *object)
{
    long value = PyLong_AsLong(object);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < INT_MIN || value > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "value does not fit in a C int");
        return -1;
    }
    return (int)value;
}

PyObject *raise_errno(int error)
{
    errno = error;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static PyObject *Tracer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    TracerObject *self = (TracerObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->listener.listener_fd = -1;
    self->listener.stop_fd = -1;
    self->listener.event_fd = -1;
    self->status_fd = -1;
    self->control_fd = -1;
    return (PyObject *)self;
}

static int parse_spec_entry(PyObject *item, struct spec_entry *entry, int max_nr)
{
    int values[7] = {0};
    PyObject *tuple = PySequence_Fast(item, "spec entries must be sequences");
    if (!tuple)
        return -1;
    Py_ssize_t size = PySequence_Fast_GET_SIZE(tuple);
    if (size != 7 && size != 9) {
        Py_DECREF(tuple);
        PyErr_SetString(PyExc_ValueError,
                        "spec entry must be (nr, action, fd_mask, path1_arg, dirfd1_arg, "
                        "path2_arg, dirfd2_arg[, value_arg, value])");
        return -1;
    }
    for (int i = 0; i < 7; i++) {
        values[i] = as_int(PySequence_Fast_GET_ITEM(tuple, i));
        if (values[i] == -1 && PyErr_Occurred()) {
            Py_DECREF(tuple);
            return -1;
        }
    }
    entry->value_arg = -1;
    entry->value = 0;
    if (size == 9) {
        int value_arg = as_int(PySequence_Fast_GET_ITEM(tuple, 7));
        unsigned long value = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(tuple, 8));
        if (PyErr_Occurred()) {
            Py_DECREF(tuple);
            return -1;
        }
        if (value_arg < -1 || value_arg > 5 || value > 0xffffffffUL ||
            (value_arg >= 0 && values[1] != ACTION_TRAP_FD)) {
            Py_DECREF(tuple);
            PyErr_Format(PyExc_ValueError, "syscall %d: bad value_arg/value", values[0]);
            return -1;
        }
        entry->value_arg = value_arg;
        entry->value = (unsigned int)value;
    }
    Py_DECREF(tuple);
    entry->nr = values[0];
    entry->action = values[1];
    entry->fd_mask = values[2];
    entry->path_arg[0] = values[3];
    entry->dirfd_arg[0] = values[4];
    entry->path_arg[1] = values[5];
    entry->dirfd_arg[1] = values[6];
    if (entry->nr < 0 || entry->nr > max_nr) {
        PyErr_Format(PyExc_ValueError, "syscall %d outside [0, max_nr=%d]", entry->nr, max_nr);
        return -1;
    }
    if (entry->action < ACTION_TRAP || entry->action > ACTION_TRAP_LOWFD) {
        PyErr_Format(PyExc_ValueError, "syscall %d: bad action %d", entry->nr, entry->action);
        return -1;
    }
    if (entry->fd_mask & ~0x3f) {
        PyErr_Format(PyExc_ValueError, "syscall %d: bad fd_mask", entry->nr);
        return -1;
    }
    for (int i = 3; i < 7; i++) {
        if (values[i] < -1 || values[i] > 5) {
            PyErr_Format(PyExc_ValueError, "syscall %d: argument index out of range", entry->nr);
            return -1;
        }
    }
    return 0;
}

static int Tracer_init(TracerObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"spec", "fd_base", "max_nr", NULL};
    PyObject *spec_object;
    int fd_base = FD_BASE_DEFAULT, max_nr = MAX_NR_DEFAULT;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|ii:Tracer", keywords, &spec_object,
                                     &fd_base, &max_nr))
        return -1;
    if (self->initialized) {
        PyErr_SetString(PyExc_RuntimeError, "Tracer already initialized");
        return -1;
    }
    if (fd_base < 3 || max_nr < 0 || max_nr > 4095) {
        PyErr_SetString(PyExc_ValueError, "fd_base must be >= 3 and max_nr in [0, 4095]");
        return -1;
    }
    PyObject *sequence = PySequence_Fast(spec_object, "spec must be a sequence");
    if (!sequence)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    self->spec = calloc(count ? (size_t)count : 1, sizeof(*self->spec));
    self->listener.by_nr = calloc((size_t)max_nr + 1, sizeof(*self->listener.by_nr));
    if (!self->spec || !self->listener.by_nr) {
        Py_DECREF(sequence);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (parse_spec_entry(PySequence_Fast_GET_ITEM(sequence, i), &self->spec[i], max_nr)) {
            Py_DECREF(sequence);
            return -1;
        }
    }
    Py_DECREF(sequence);
    self->spec_count = (size_t)count;
    if (getrandom(&self->handoff_cookie, sizeof(self->handoff_cookie), 0) !=
        (ssize_t)sizeof(self->handoff_cookie)) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->program = filter_build(self->spec, self->spec_count, fd_base, max_nr,
                                 self->handoff_cookie, &self->program_length);
    if (!self->program) {
        if (errno == EINVAL)
            PyErr_SetString(PyExc_ValueError, "spec lists a syscall twice");
        else
            PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    for (size_t i = 0; i < self->spec_count; i++)
        self->listener.by_nr[self->spec[i].nr] = &self->spec[i];
    self->listener.max_nr = max_nr;
    self->listener.fd_base = fd_base;
    int error = config_init(&self->config);
    if (error)
        return raise_errno(-error), -1;
    error = answers_init(&self->answers, max_nr);
    if (error) {
        config_destroy(&self->config);
        return raise_errno(-error), -1;
    }
    self->listener.answers = &self->answers;
    pthread_mutex_init(&self->listener.queue_lock, NULL);
    self->listener.config = &self->config;
    self->listener.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->listener.event_fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        config_destroy(&self->config);
        pthread_mutex_destroy(&self->listener.queue_lock);
        return -1;
    }
    self->initialized = 1;
    return 0;
}


static void stop_listener(TracerObject *self)
{
    Py_BEGIN_ALLOW_THREADS
    listener_stop(&self->listener);
    Py_END_ALLOW_THREADS
    if (self->listener.listener_fd >= 0) {
        close(self->listener.listener_fd);
        self->listener.listener_fd = -1;
    }
}

static void reap_keeper(TracerObject *self, int ask_for_sweep)
{
    if (!self->spawned || self->keeper_reaped)
        return;
    if (ask_for_sweep && self->control_fd >= 0) {
        char request = 'K';
        ssize_t ignored = write(self->control_fd, &request, 1);
        (void)ignored;
    }
    if (self->control_fd >= 0) {
        close(self->control_fd); /* EOF asks for the sweep too */
        self->control_fd = -1;
    }
    pid_t keeper = self->keeper_pid;
    int result;
    Py_BEGIN_ALLOW_THREADS
    do
        result = waitpid(keeper, NULL, 0);
    while (result < 0 && errno == EINTR);
    Py_END_ALLOW_THREADS
    self->keeper_reaped = 1;
}

static void Tracer_dealloc(TracerObject *self)
{
    if (self->initialized) {
        stop_listener(self);
        reap_keeper(self, 1);
        if (self->status_fd >= 0)
            close(self->status_fd);
        if (self->listener.event_fd >= 0)
            close(self->listener.event_fd);
        free(self->listener.queue);
        pthread_mutex_destroy(&self->listener.queue_lock);
        config_destroy(&self->config);
        answers_destroy(&self->answers);
    }
    free(self->program);
    free(self->spec);
    free(self->listener.by_nr);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---------- session ---------- */

/* A NULL-terminated array of the strings of a list (converted with os.fsencode rules);
 * the bytes objects are kept alive in *keep. */
static char **string_array(PyObject *list, PyObject **keep, const char *what)
{
    PyObject *sequence = PySequence_Fast(list, what);
    if (!sequence)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(sequence);
    *keep = PyList_New(0);
    char **array = calloc((size_t)count + 1, sizeof(char *));
    if (!*keep || !array) {
        Py_DECREF(sequence);
        free(array);
        if (*keep)
            return NULL;
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *converted = NULL;
        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(sequence, i), &converted) ||
            PyList_Append(*keep, converted) < 0) {
            Py_XDECREF(converted);
            Py_DECREF(sequence);
            free(array);
            return NULL;
        }
        array[i] = PyBytes_AS_STRING(converted);
        Py_DECREF(converted);
    }
    Py_DECREF(sequence);
    return array;
}

/* Where execvp would look for `name`, given the environment the command will have. */
static char **exec_candidates(const char *name, char *const *envp)
{
    const char *search = "/bin:/usr/bin"; /* glibc's default when PATH is unset */
    for (char *const *entry = envp; *entry; entry++)
        if (strncmp(*entry, "PATH=", 5) == 0)
            search = *entry + 5;
    size_t directories = 1;
    for (const char *p = search; *p; p++)
        directories += *p == ':';
    char **candidates = calloc(directories + 2, sizeof(char *));
    if (!candidates)
        return NULL;
    if (strchr(name, '/')) {
        candidates[0] = strdup(name);
        if (!candidates[0]) {
            free(candidates);
            return NULL;
        }
        return candidates;
    }
    size_t n = 0;
    const char *start = search;
    for (;;) {
        const char *end = strchrnul(start, ':');
        size_t length = (size_t)(end - start);
        char *candidate = malloc(length + strlen(name) + 2);
        if (!candidate)
            break;
        if (length)
            sprintf(candidate, "%.*s/%s", (int)length, start, name);
        else
            strcpy(candidate, name); /* an empty entry means the current directory */
        candidates[n++] = candidate;
        if (!*end)
            break;
        start = end + 1;
    }
    return candidates;
}

static void free_candidates(char **candidates)
{
    if (!candidates)
        return;
    for (char **candidate = candidates; *candidate; candidate++)
        free(*candidate);
    free(candidates);
}

PyDoc_STRVAR(Tracer_spawn_doc,
"spawn(argv, env, cwd=None) -> int\n\n"
"Start the session: fork the keeper, which forks the command; the command installs the\n"
"seccomp filter, hands its listener back and execs argv (argv[0] looked up in env's PATH\n"
"like execvp).  Starts the listener thread and returns the command's pid.  An exec failure\n"
"shows as exit status 127 (ENOENT) or 126 (other) with 'vufuse: CMD: strerror' on stderr;\n"
"a failure before exec (cwd, seccomp) raises OSError.  Once per Tracer.");

static PyObject *Tracer_spawn(TracerObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"argv", "env", "cwd", NULL};
    PyObject *argv_object, *env_object, *cwd_object = Py_None;
    REQUIRE_INIT(self);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:spawn", keywords, &argv_object,
                                     &env_object, &cwd_object))
        return NULL;
    if (self->spawned) {
        PyErr_SetString(PyExc_RuntimeError, "this Tracer already spawned its session");
        return NULL;
    }
    PyObject *keep_argv = NULL, *keep_env = NULL, *cwd_bytes = NULL, *result = NULL;
    char **argv = NULL, **envp = NULL, **candidates = NULL;
    argv = string_array(argv_object, &keep_argv, "argv must be a sequence");
    if (!argv)
        goto out;
    if (!argv[0]) {
        PyErr_SetString(PyExc_ValueError, "argv is empty");
        goto out;
    }
    envp = string_array(env_object, &keep_env, "env must be a sequence");
    if (!envp)
        goto out;
    if (cwd_object != Py_None && !PyUnicode_FSConverter(cwd_object, &cwd_bytes))
        goto out;
    candidates = exec_candidates(argv[0], envp);
    if (!candidates) {
        PyErr_NoMemory();
        goto out;
    }
    struct spawn_request request = {
        .argv = argv,
        .envp = envp,
        .candidates = candidates,
        .cwd = cwd_bytes ? PyBytes_AS_STRING(cwd_bytes) : NULL,
        .display_name = argv[0],
        .handoff_cookie = self->handoff_cookie,
    };
    struct sock_fprog program = {self->program_length, self->program};
    struct spawn_result spawned;
    int error;
    Py_BEGIN_ALLOW_THREADS
    answers_capture_ids(&self->answers); /* the identity the command inherits */
    error = spawn_session(&request, &program, &spawned);
    Py_END_ALLOW_THREADS
    if (error) {
        raise_errno(-error);
        goto out;
    }
    self->spawned = 1;
    self->keeper_pid = spawned.keeper_pid;
    self->command_pid = spawned.command_pid;
    self->status_fd = spawned.status_fd;
    self->control_fd = spawned.control_fd;
    self->listener.listener_fd = spawned.listener_fd;
    error = listener_start(&self->listener);
    if (error) {
        reap_keeper(self, 1);
        raise_errno(-error);
        goto out;
    }
    result = PyLong_FromLong(self->command_pid);
out:
    free_candidates(candidates);
    free(argv);
    free(envp);
    Py_XDECREF(keep_argv);
    Py_XDECREF(keep_env);
    Py_XDECREF(cwd_bytes);
    return result;
}

PyDoc_STRVAR(Tracer_status_fd_doc,
"status_fd() -> int\n\n"
"A non-blocking fd that becomes readable once the command has exited; then wait_status()\n"
"returns its raw wait status.  -1 before spawn().");

static PyObject *Tracer_status_fd(TracerObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(self->status_fd);
}

PyDoc_STRVAR(Tracer_wait_status_doc,
"wait_status() -> int | None\n\n"
"The command's raw wait status (as os.waitpid gives it: os.WIFEXITED/os.WEXITSTATUS apply),\n"
"or None while it is still running.  Never blocks.");

static PyObject *Tracer_wait_status(TracerObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->have_status && self->status_fd >= 0) {
        int32_t raw;
        ssize_t n = read(self->status_fd, &raw, sizeof(raw));
        if (n == (ssize_t)sizeof(raw)) {
            self->have_status = 1;
            self->status = raw;
        }
    }
    if (!self->have_status)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->status);
}

PyDoc_STRVAR(Tracer_kill_all_doc,
"kill_all() -> None\n\n"
"Ask the keeper to SIGKILL every remaining process of the session (sweeping /proc until\n"
"none is left) and return once the keeper has exited.  The command's status, if it had\n"
"exited, stays available from wait_status().");

static PyObject *Tracer_kill_all(TracerObject *self, PyObject *unused)
{
    (void)unused;
    REQUIRE_INIT(self);
    reap_keeper(self, 1);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Tracer_keeper_pid_doc,
"keeper_pid() -> int\n\nThe keeper process's pid (0 before spawn()).");

static PyObject *Tracer_keeper_pid(TracerObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(self->keeper_pid);
}

/* ---------- close ---------- */

PyDoc_STRVAR(Tracer_close_doc,
"close() -> None\n\n"
"Stop the listener thread and close the listener: tracees' trapped syscalls then fail with\n"
"ENOSYS.  Kills nothing (kill_all() does; dropping the Tracer object does both).  Must not\n"
"race with other calls on the same Tracer.");

static PyObject *Tracer_close(TracerObject *self, PyObject *unused)
{
    (void)unused;
    REQUIRE_INIT(self);
    stop_listener(self);
    Py_RETURN_NONE;
}

/* The session's methods; the Tracer's full table (these plus tracer_call_methods) is
 * assembled at module init. */
static PyMethodDef session_methods[] = {
    {"spawn", (PyCFunction)(void (*)(void))Tracer_spawn, METH_VARARGS | METH_KEYWORDS,
     Tracer_spawn_doc},
    {"status_fd", (PyCFunction)Tracer_status_fd, METH_NOARGS, Tracer_status_fd_doc},
    {"wait_status", (PyCFunction)Tracer_wait_status, METH_NOARGS, Tracer_wait_status_doc},
    {"kill_all", (PyCFunction)Tracer_kill_all, METH_NOARGS, Tracer_kill_all_doc},
    {"keeper_pid", (PyCFunction)Tracer_keeper_pid, METH_NOARGS, Tracer_keeper_pid_doc},
    {"close", (PyCFunction)Tracer_close, METH_NOARGS, Tracer_close_doc},
    {NULL},
};

#define METHOD_SLOTS 40
static PyMethodDef Tracer_methods[METHOD_SLOTS];

PyDoc_STRVAR(Tracer_doc,
"Tracer(spec, fd_base=512, max_nr=470)\n\n"
"One traced session: the seccomp filter built from `spec` (a sequence of\n"
"(nr, action, fd_mask, path1_arg, dirfd1_arg, path2_arg, dirfd2_arg[, value_arg, value])\n"
"tuples), the keeper\n"
"and command processes, the listener thread that answers the fast path, the slow-path\n"
"queue and tracee memory access.  See docs/tracer-core.md.  Dropping the object stops the\n"
"listener and kills the session.");

static PyTypeObject TracerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hypervisor._tracer.Tracer",
    .tp_basicsize = sizeof(TracerObject),
    .tp_dealloc = (destructor)Tracer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Tracer_doc,
    .tp_methods = Tracer_methods,
    .tp_init = (initproc)Tracer_init,
    .tp_new = Tracer_new,
};

/* ======================================================================================
 * Module
 * ==================================================================================== */

static struct PyModuleDef tracer_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "hypervisor._tracer",
    .m_doc = "The C tracing core of vufuse: seccomp user-notification listener, fast path, "
             "session keeper and tracee memory access (docs/tracer-core.md).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__tracer(void)
{
    size_t slot = 0;
    for (PyMethodDef *method = session_methods; method->ml_name; method++)
        Tracer_methods[slot++] = *method;
    for (PyMethodDef *method = tracer_call_methods; method->ml_name && slot + 1 < METHOD_SLOTS;
         method++)
        Tracer_methods[slot++] = *method;
    for (PyMethodDef *method = tracer_answer_methods; method->ml_name && slot + 1 < METHOD_SLOTS;
         method++)
        Tracer_methods[slot++] = *method;
    Tracer_methods[slot] = (PyMethodDef){NULL};
    if (PyType_Ready(&NotificationType) < 0 || PyType_Ready(&TracerType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&tracer_module);
    if (!module)
        return NULL;
    static const struct {
        const char *name;
        long value;
    } constants[] = {
        {"ACTION_TRAP", ACTION_TRAP},       {"ACTION_TRAP_FD", ACTION_TRAP_FD},
        {"ACTION_ENOSYS", ACTION_ENOSYS},   {"ACTION_PYTHON", ACTION_PYTHON},
        {"ACTION_DUMPABLE", ACTION_DUMPABLE}, {"ACTION_TRAP_CWD", ACTION_TRAP_CWD},
        {"ACTION_TRAP_VIRTUAL", ACTION_TRAP_VIRTUAL},
        {"ACTION_TRAP_SOCKADDR", ACTION_TRAP_SOCKADDR},
        {"ACTION_TRAP_LOWFD", ACTION_TRAP_LOWFD},
        {"REASON_ALWAYS", REASON_ALWAYS},     {"REASON_CWD", REASON_CWD},
        {"REASON_FD", REASON_FD},           {"REASON_SPECIAL", REASON_SPECIAL},
        {"REASON_PATH", REASON_PATH},       {"FD_BASE_DEFAULT", FD_BASE_DEFAULT},
        {"MAX_NR_DEFAULT", MAX_NR_DEFAULT},
        {"ROLE_STAT", ROLE_STAT},           {"ROLE_LSTAT", ROLE_LSTAT},
        {"ROLE_NEWFSTATAT", ROLE_NEWFSTATAT}, {"ROLE_STATX", ROLE_STATX},
        {"ROLE_SET_UIDS", ROLE_SET_UIDS},   {"ROLE_SET_GIDS", ROLE_SET_GIDS},
        {"ROLE_SETGROUPS", ROLE_SETGROUPS},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
        if (PyModule_AddIntConstant(module, constants[i].name, constants[i].value) < 0)
            goto fail;
    }
    Py_INCREF(&TracerType);
    if (PyModule_AddObject(module, "Tracer", (PyObject *)&TracerType) < 0) {
        Py_DECREF(&TracerType);
        goto fail;
    }
    Py_INCREF(&NotificationType);
    if (PyModule_AddObject(module, "Notification", (PyObject *)&NotificationType) < 0) {
        Py_DECREF(&NotificationType);
        goto fail;
    }
    return module;
fail:
    Py_DECREF(module);
    return NULL;
}
