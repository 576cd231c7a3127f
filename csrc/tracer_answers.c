/*
 * hypervisor._tracer: the Tracer methods of the answer cache (csrc/answers.c) and of the
 * identity watch that guards it.
 */
#include "tracer_object.h"

#include <errno.h>
#include <string.h>

PyDoc_STRVAR(Tracer_set_syscall_roles_doc,
"set_syscall_roles(roles) -> None\n\n"
"Which syscall numbers the answer cache serves and which change identities: a sequence of\n"
"(nr, role, count) with role one of ROLE_STAT, ROLE_LSTAT, ROLE_NEWFSTATAT, ROLE_STATX,\n"
"ROLE_SET_UIDS, ROLE_SET_GIDS (count: how many id arguments), ROLE_SETGROUPS.  The numbers\n"
"must be trapped by the spec.  Before spawn() only (RuntimeError after).");

static PyObject *Tracer_set_syscall_roles(TracerObject *self, PyObject *arg)
{
    REQUIRE_INIT(self);
    if (self->spawned) {
        PyErr_SetString(PyExc_RuntimeError, "roles are set before spawn()");
        return NULL;
    }
    PyObject *sequence = PySequence_Fast(arg, "roles must be a sequence");
    if (!sequence)
        return NULL;
    Py_ssize_t size = PySequence_Fast_GET_SIZE(sequence);
    struct answer_cache *cache = &self->answers;
    memset(cache->roles, 0, sizeof(*cache->roles) * ((size_t)cache->max_nr + 1));
    for (Py_ssize_t i = 0; i < size; i++) {
        int nr, role, count;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(sequence, i), "iii:role", &nr, &role,
                              &count))
            goto fail;
        if (nr < 0 || nr > cache->max_nr || role < ROLE_STAT || role > ROLE_SETGROUPS ||
            count < 0 || count > 6) {
            PyErr_Format(PyExc_ValueError, "bad role (%d, %d, %d)", nr, role, count);
            goto fail;
        }
        if (!self->listener.by_nr[nr]) {
            PyErr_Format(PyExc_ValueError, "syscall %d is not trapped by the spec", nr);
            goto fail;
        }
        cache->roles[nr] = (struct syscall_role){role, count};
    }
    Py_DECREF(sequence);
    Py_RETURN_NONE;
fail:
    memset(cache->roles, 0, sizeof(*cache->roles) * ((size_t)cache->max_nr + 1));
    Py_DECREF(sequence);
    return NULL;
}

PyDoc_STRVAR(Tracer_cache_answer_doc,
"cache_answer(path, stat, statx, is_symlink, deadline_ns, generation) -> bool\n\n"
"Let the listener answer stat/lstat/newfstatat/statx of canonical absolute `path` itself\n"
"with these bytes (144-byte struct stat, 256-byte struct statx) until CLOCK_MONOTONIC\n"
"`deadline_ns`; a symlink's answer serves only the no-follow calls.  Refused (False) when\n"
"`generation` (answer_generation() read before the answer was computed) is no longer the\n"
"current one, or when identities are no longer uniform.");

static PyObject *Tracer_cache_answer(TracerObject *self, PyObject *args)
{
    REQUIRE_INIT(self);
    Py_buffer path, stat_bytes, statx_bytes;
    int is_symlink;
    long long deadline;
    unsigned long long generation;
    if (!PyArg_ParseTuple(args, "y*y*y*pLK:cache_answer", &path, &stat_bytes, &statx_bytes,
                          &is_symlink, &deadline, &generation))
        return NULL;
    PyObject *result = NULL;
    if (stat_bytes.len != ANSWER_STAT_SIZE || statx_bytes.len != ANSWER_STATX_SIZE ||
        path.len < 1 || ((const char *)path.buf)[0] != '/' ||
        memchr(path.buf, '\0', (size_t)path.len)) {
        PyErr_SetString(PyExc_ValueError, "bad answer (path or sizes)");
        goto out;
    }
    int stored = answers_store(&self->answers, path.buf, (size_t)path.len, stat_bytes.buf,
                               statx_bytes.buf, is_symlink, deadline, generation);
    if (stored < 0)
        raise_errno(-stored);
    else
        result = PyBool_FromLong(stored == 0);
out:
    PyBuffer_Release(&path);
    PyBuffer_Release(&stat_bytes);
    PyBuffer_Release(&statx_bytes);
    return result;
}

PyDoc_STRVAR(Tracer_drop_answers_doc,
"drop_answers() -> int\n\n"
"Forget every cached answer (a provider's state changed); returns the new generation.");

static PyObject *Tracer_drop_answers(TracerObject *self, PyObject *unused)
{
    (void)unused;
    REQUIRE_INIT(self);
    return PyLong_FromUnsignedLongLong(answers_drop(&self->answers));
}

PyDoc_STRVAR(Tracer_answer_generation_doc,
"answer_generation() -> int\n\n"
"The current generation: read it before computing an answer, pass it to cache_answer().");

static PyObject *Tracer_answer_generation(TracerObject *self, PyObject *unused)
{
    (void)unused;
    REQUIRE_INIT(self);
    return PyLong_FromUnsignedLongLong(answers_generation(&self->answers));
}

PyDoc_STRVAR(Tracer_session_ids_doc,
"session_ids() -> tuple[int, int, tuple[int, ...]] | None\n\n"
"(uid, gid, groups) that every tracee still has -- the identity the command started with --\n"
"or None once a tracee may have changed an id (a set*id/setgroups call that could change\n"
"one was trapped): then read /proc/TID/status.");

static PyObject *Tracer_session_ids(TracerObject *self, PyObject *unused)
{
    (void)unused;
    REQUIRE_INIT(self);
    struct answer_cache *cache = &self->answers;
    if (!__atomic_load_n(&cache->ids_uniform, __ATOMIC_SEQ_CST))
        Py_RETURN_NONE;
    pthread_mutex_lock(&cache->lock);
    int count = cache->group_count;
    PyObject *groups = PyTuple_New(count);
    for (int i = 0; groups && i < count; i++) {
        PyObject *gid = PyLong_FromUnsignedLong(cache->groups[i]);
        if (!gid) {
            Py_CLEAR(groups);
            break;
        }
        PyTuple_SET_ITEM(groups, i, gid);
    }
    uid_t uid = cache->uid;
    gid_t gid = cache->gid;
    pthread_mutex_unlock(&cache->lock);
    if (!groups)
        return NULL;
    return Py_BuildValue("(kkN)", (unsigned long)uid, (unsigned long)gid, groups);
}

PyMethodDef tracer_answer_methods[] = {
    {"set_syscall_roles", (PyCFunction)Tracer_set_syscall_roles, METH_O,
     Tracer_set_syscall_roles_doc},
    {"cache_answer", (PyCFunction)Tracer_cache_answer, METH_VARARGS, Tracer_cache_answer_doc},
    {"drop_answers", (PyCFunction)Tracer_drop_answers, METH_NOARGS, Tracer_drop_answers_doc},
    {"answer_generation", (PyCFunction)Tracer_answer_generation, METH_NOARGS,
     Tracer_answer_generation_doc},
    {"session_ids", (PyCFunction)Tracer_session_ids, METH_NOARGS, Tracer_session_ids_doc},
    {NULL},
};
