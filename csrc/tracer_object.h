/*
 * The Tracer object shared by the binding files (tracer_module.c, tracer_calls.c).
 */
#ifndef VUFUSE_TRACER_OBJECT_H
#define VUFUSE_TRACER_OBJECT_H

#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include "tracer.h"

typedef struct {
    PyObject_HEAD
    int initialized;
    struct spec_entry *spec;
    size_t spec_count;
    struct sock_filter *program;
    unsigned short program_length;
    uint64_t handoff_cookie;
    struct fastpath_config config;
    struct answer_cache answers;
    struct listener listener;
    int spawned;
    pid_t keeper_pid;
    pid_t command_pid;
    int status_fd;
    int control_fd;
    int keeper_reaped;
    int have_status;
    int status;
} TracerObject;

#define REQUIRE_INIT(self)                                                       \
    do {                                                                         \
        if (!(self)->initialized) {                                              \
            PyErr_SetString(PyExc_RuntimeError, "Tracer.__init__ was not called"); \
            return NULL;                                                         \
        }                                                                        \
    } while (0)

/* OSError with that errno (returns NULL). */
PyObject *raise_errno(int error);
/* A C int from a Python int (OverflowError outside the range); -1 with an exception set. */
int as_int(PyObject *object);
/* A new Notification object. */
PyObject *notification_new(const struct queued_notification *item);
/* tracer_calls.c: the methods used while serving a session. */
extern PyMethodDef tracer_call_methods[];
/* tracer_answers.c: the answer cache and the identity watch. */
extern PyMethodDef tracer_answer_methods[];

#endif
