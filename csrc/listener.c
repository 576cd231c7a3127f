/*
 * The listener thread: RECV a notification, let the fast path decide, CONTINUE it or queue
 * it for Python.  It never takes the GIL.  It polls the listener together with a stop
 * eventfd, because a thread blocked in SECCOMP_IOCTL_NOTIF_RECV can't otherwise be woken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "tracer.h"

static void count(struct listener *listener, int which)
{
    __atomic_add_fetch(&listener->stats[which], 1, __ATOMIC_RELAXED);
}

int notify_ioctl(int fd, unsigned long request, void *argument)
{
    int result;
    do
        result = ioctl(fd, request, argument);
    while (result < 0 && errno == EINTR);
    return result;
}

static void enqueue(struct listener *listener, const struct queued_notification *item)
{
    pthread_mutex_lock(&listener->queue_lock);
    if (listener->queue_length == listener->queue_capacity) {
        size_t capacity = listener->queue_capacity ? listener->queue_capacity * 2 : 64;
        struct queued_notification *queue =
            realloc(listener->queue, capacity * sizeof(*queue));
        if (!queue) {
            pthread_mutex_unlock(&listener->queue_lock);
            /* Out of memory: the tracee can't be served; fail the syscall rather than hang. */
            struct seccomp_notif_resp response = {item->id, 0, -ENOMEM, 0};
            notify_ioctl(listener->listener_fd, SECCOMP_IOCTL_NOTIF_SEND, &response);
            return;
        }
        listener->queue = queue;
        listener->queue_capacity = capacity;
    }
    listener->queue[listener->queue_length++] = *item;
    if (listener->queue_length == 1) {
        uint64_t one = 1;
        ssize_t ignored = write(listener->event_fd, &one, sizeof(one));
        (void)ignored;
    }
    pthread_mutex_unlock(&listener->queue_lock);
}

static void handle(struct listener *listener, const struct seccomp_notif *notif)
{
    count(listener, STAT_NOTIFICATIONS);
    struct queued_notification item = {0};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    item.received_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    item.id = notif->id;
    item.pid = notif->pid;
    item.nr = notif->data.nr;
    memcpy(item.args, notif->data.args, sizeof(item.args));
    item.fd = -1;
    const struct spec_entry *entry = NULL;
    if (notif->data.nr >= 0 && notif->data.nr <= listener->max_nr) {
        entry = listener->by_nr[notif->data.nr];
        const struct syscall_role *role = &listener->answers->roles[notif->data.nr];
        if (role->role >= ROLE_SET_UIDS) {
            answers_watch_ids(listener->answers, notif, role);
        } else if (role->role &&
                   answers_serve(listener->answers, listener->listener_fd, notif, role->role)) {
            count(listener, STAT_ANSWERED);
            return;
        }
    }
    int reason = entry ? fastpath_decide(listener->config, entry, notif, listener->fd_base,
                                         &item)
                       : 0;
    if (reason) {
        static const int counter[] = {
            [REASON_ALWAYS] = STAT_QUEUED_ALWAYS,
            [REASON_FD] = STAT_QUEUED_FD,
            [REASON_SPECIAL] = STAT_QUEUED_SPECIAL,
            [REASON_PATH] = STAT_QUEUED_PATH,
            [REASON_CWD] = STAT_QUEUED_CWD,
        };
        item.reason = reason;
        count(listener, STAT_QUEUED);
        count(listener, counter[reason]);
        enqueue(listener, &item);
        return;
    }
    struct seccomp_notif_resp response = {notif->id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE};
    if (notify_ioctl(listener->listener_fd, SECCOMP_IOCTL_NOTIF_SEND, &response) < 0)
        count(listener, STAT_DROPPED); /* the tracee died or was interrupted meanwhile */
    else
        count(listener, STAT_FAST_CONTINUE);
}

static void *listener_main(void *argument)
{
    struct listener *listener = argument;
    struct pollfd fds[3] = {
        {listener->listener_fd, POLLIN, 0},
        {listener->stop_fd, POLLIN, 0},
        {listener->config->inotify_fd, POLLIN, 0}, /* -1 is ignored by poll */
    };
    for (;;) {
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[1].revents)
            break;
        if (fds[2].revents & POLLIN)
            config_drain_events(listener->config); /* before judging anything new */
        if (fds[0].revents & POLLIN) {
            struct seccomp_notif notif;
            memset(&notif, 0, sizeof(notif)); /* RECV insists on a zeroed buffer */
            if (ioctl(listener->listener_fd, SECCOMP_IOCTL_NOTIF_RECV, &notif) < 0) {
                if ((errno == EINTR || errno == ENOENT) && !(fds[0].revents & POLLHUP))
                    continue; /* the tracee went away between poll and RECV */
                break;
            }
            handle(listener, &notif);
        } else if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            break; /* no task uses the filter any more: the session is over */
        }
    }
    return NULL;
}

int listener_start(struct listener *listener)
{
    listener->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (listener->stop_fd < 0)
        return -errno;
    /* Signals are for Python's main thread, never for this one. */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    int error = pthread_create(&listener->thread, NULL, listener_main, listener);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (error) {
        close(listener->stop_fd);
        listener->stop_fd = -1;
        return -error;
    }
    listener->running = 1;
    return 0;
}

void listener_stop(struct listener *listener)
{
    if (!listener->running)
        return;
    uint64_t one = 1;
    ssize_t ignored = write(listener->stop_fd, &one, sizeof(one));
    (void)ignored;
    pthread_join(listener->thread, NULL);
    listener->running = 0;
    close(listener->stop_fd);
    listener->stop_fd = -1;
}

size_t listener_take(struct listener *listener, struct queued_notification **out)
{
    pthread_mutex_lock(&listener->queue_lock);
    size_t length = listener->queue_length;
    *out = listener->queue;
    listener->queue = NULL;
    listener->queue_length = listener->queue_capacity = 0;
    uint64_t value;
    ssize_t ignored = read(listener->event_fd, &value, sizeof(value));
    (void)ignored;
    pthread_mutex_unlock(&listener->queue_lock);
    return length;
}
