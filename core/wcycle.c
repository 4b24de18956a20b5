/*
 * Configurations inside a worker (see wcycle.h). Accepts carry their view's
 * generation in user_data, so an accept completing after a reload (it was
 * already in the kernel) still finds the listener and configuration it was
 * armed for: that connection is served by the old configuration, like every
 * other connection that predates the reload.
 */
#include "wcycle.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "gw.h"
#include "log.h"
#include "module.h"
#include "ring.h"
#include "timer.h"

#define ACCEPT_BACKOFF_MS 100

static size_t module_count(void)
{
    size_t n = 0;

    while (gw_modules[n])
        n++;
    return n;
}

static void modules_exit(gw_worker_t *w, gw_wcycle_t *wc)
{
    /* In reverse: a later module's state may point into an earlier one's. */
    for (size_t n = module_count(); n-- > 0;)
        if (gw_modules[n]->exit_worker)
            gw_modules[n]->exit_worker(w, wc);
}

gw_wcycle_t *gw_wcycle_new(gw_worker_t *w, const gw_cycle_t *cy)
{
    gw_wcycle_t *wc = calloc(1, sizeof(*wc));
    size_t started = 0;
    int ret = -ENOMEM;

    if (wc == NULL)
        goto fail;
    wc->cycle = cy;
    wc->gen = ++w->wc_gen & 0xffffffu;
    wc->nlisteners = cy->nlistens;
    wc->listeners = calloc(cy->nlistens ? cy->nlistens : 1, sizeof(*wc->listeners));
    if (wc->listeners == NULL)
        goto fail;
    for (uint32_t i = 0; i < cy->nlistens; i++) {
        wc->listeners[i].fd = cy->listens[i].fds[w->id - 1];
        wc->listeners[i].conf = &cy->listens[i];
        wc->listeners[i].wc = wc;
    }
    for (; gw_modules[started]; started++) {
        const gw_module_t *m = gw_modules[started];

        if (m->init_worker && (ret = m->init_worker(w, wc)) < 0) {
            gw_log(GW_LOG_EMERG, "worker %d: module %s failed to start (%d: %s)", w->id, m->name, -ret,
                   strerror(-ret));
            goto fail;
        }
    }
    return wc;
fail:
    if (wc) {
        while (started-- > 0)
            if (gw_modules[started]->exit_worker)
                gw_modules[started]->exit_worker(w, wc);
        free(wc->listeners);
        free(wc);
    }
    return NULL;
}

/* user_data of an accept: idx = listener << 8 | slot, gen = the view's. */
static void arm_accept(gw_worker_t *w, gw_wcycle_t *wc, uint32_t i, uint32_t slot)
{
    struct io_uring_sqe *sqe = gw_ring_sqe(w);
    gw_accept_slot_t *a = &wc->listeners[i].slots[slot];

    a->len = sizeof(a->ss);
    io_uring_prep_accept(sqe, wc->listeners[i].fd, (struct sockaddr *)&a->ss, &a->len, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, gw_ud(GW_OP_ACCEPT, i << 8 | slot, wc->gen));
    a->armed = 1;
    wc->accepts++;
}

void gw_wcycle_arm(gw_worker_t *w, gw_wcycle_t *wc)
{
    for (uint32_t i = 0; i < wc->nlisteners; i++)
        for (uint32_t slot = 0; slot < GW_ACCEPT_DEPTH; slot++)
            arm_accept(w, wc, i, slot);
}

static int listening_in(const gw_wcycle_t *wc, int fd)
{
    for (uint32_t i = 0; wc && i < wc->nlisteners; i++)
        if (wc->listeners[i].fd == fd)
            return 1;
    return 0;
}

/*
 * Take back every accept of wc still in the kernel (by user_data: each
 * completes with -ECANCELED, or with a connection that raced the cancel).
 * Sockets `keep` does not listen on are closed after the cancels.
 */
static void stop_accepting(gw_worker_t *w, gw_wcycle_t *wc, const gw_wcycle_t *keep)
{
    for (uint32_t i = 0; i < wc->nlisteners; i++) {
        gw_listener_t *l = &wc->listeners[i];
        struct io_uring_sqe *sqe;

        if (l->fd < 0)
            continue;
        gw_timer_cancel(&w->timers, &l->backoff);
        for (uint32_t slot = 0; slot < GW_ACCEPT_DEPTH; slot++) {
            if (!l->slots[slot].armed)
                continue;
            sqe = gw_ring_sqe(w);
            io_uring_prep_cancel64(sqe, gw_ud(GW_OP_ACCEPT, i << 8 | slot, wc->gen), 0);
            io_uring_sqe_set_data64(sqe, gw_ud(GW_OP_NONE, 0, 0));
            sqe->flags |= IOSQE_IO_HARDLINK;
        }
        if (!listening_in(keep, l->fd)) {
            sqe = gw_ring_sqe(w);
            io_uring_prep_close(sqe, l->fd);
            io_uring_sqe_set_data64(sqe, gw_ud(GW_OP_NONE, 0, 0));
        }
        l->fd = -1;
    }
}

static void release(gw_worker_t *w, gw_wcycle_t *wc)
{
    gw_wcycle_t **pp = &w->old;
    gw_cycle_t *cy = (gw_cycle_t *)wc->cycle;

    while (*pp && *pp != wc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = wc->next;
    modules_exit(w, wc);
    free(wc->listeners);
    free(wc);
    /* The main thread frees the configuration when no worker uses it. */
    if (atomic_fetch_sub(&cy->users, 1) == 1) {
        char r = 'R';

        if (write(w->notify_fd, &r, 1) < 0) {
            /* the main thread is gone */
        }
    }
}

void gw_wcycle_conn_gone(gw_worker_t *w, gw_wcycle_t *wc)
{
    if (wc != w->cur && wc->conns == 0 && wc->accepts == 0 && !w->stopping)
        release(w, wc);
}

void gw_wcycle_switch(gw_worker_t *w, gw_wcycle_t *next)
{
    gw_wcycle_t *old = w->cur;

    stop_accepting(w, old, next);
    w->cur = next;
    old->next = w->old;
    w->old = old;
    gw_wcycle_arm(w, next);
    /* Connections of the old configuration are told (idle upstream ones
     * close); a client connection finishes its next exchange with
     * "Connection: close". Idle client connections are not closed now: a
     * client may be sending on one at this very moment, and would see a
     * close instead of an answer. */
    for (uint32_t i = 0; i < w->used_hwm; i++) {
        gw_conn_t *c = &w->conns[i];

        if ((c->flags & GW_CONN_USED) && c->wc == old && !(c->flags & GW_CONN_CLOSING) && c->ops &&
            c->ops->on_retire)
            c->ops->on_retire(w, c);
    }
    gw_wcycle_conn_gone(w, old);
}

void gw_wcycle_close_listeners(gw_worker_t *w)
{
    stop_accepting(w, w->cur, NULL);
    for (gw_wcycle_t *wc = w->old; wc; wc = wc->next)
        stop_accepting(w, wc, NULL);
}

static void store_peer(gw_peer_addr_t *p, const struct sockaddr_storage *ss)
{
    memset(p, 0, sizeof(*p));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

        p->family = AF_INET;
        p->port = ntohs(s4->sin_port);
        memcpy(p->addr, &s4->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

        p->family = AF_INET6;
        p->port = ntohs(s6->sin6_port);
        memcpy(p->addr, &s6->sin6_addr, 16);
    }
}

static void accept_backoff_done(void *owner, gw_timer_t *t)
{
    gw_worker_t *w = owner;
    gw_listener_t *l = gw_container_of(t, gw_listener_t, backoff);
    uint32_t i = (uint32_t)(l - l->wc->listeners);

    for (uint32_t slot = 0; slot < GW_ACCEPT_DEPTH && !w->stopping && l->fd >= 0; slot++)
        if (!l->slots[slot].armed)
            arm_accept(w, l->wc, i, slot);
}

static gw_wcycle_t *find(gw_worker_t *w, uint32_t gen)
{
    if ((w->cur->gen & 0xffffffu) == gen)
        return w->cur;
    for (gw_wcycle_t *wc = w->old; wc; wc = wc->next)
        if ((wc->gen & 0xffffffu) == gen)
            return wc;
    return NULL;
}

void gw_wcycle_handle_accept(gw_worker_t *w, struct io_uring_cqe *cqe)
{
    gw_wcycle_t *wc = find(w, gw_ud_gen(cqe->user_data));
    uint32_t i = gw_ud_idx(cqe->user_data) >> 8, slot = gw_ud_idx(cqe->user_data) & 0xff;
    gw_listener_t *l;
    gw_conn_t *c;

    if (wc == NULL) { /* cannot happen: a view lives while it has accepts in flight */
        if (cqe->res >= 0)
            close(cqe->res);
        return;
    }
    l = &wc->listeners[i];
    l->slots[slot].armed = 0;
    wc->accepts--;
    if (cqe->res >= 0) {
        gw_stat_inc(&w->st.accepted);
        if (w->stopping) {
            close(cqe->res);
        } else if ((c = gw_conn_alloc(w, wc, cqe->res)) == NULL) {
            /* Table full: refuse this one (worker_connections bounds memory)
             * and, as nginx does, stop accepting for a while: the others wait
             * in the backlog for a slot rather than being accepted only to be
             * closed, one after the other, as fast as they arrive. */
            close(cqe->res);
            if (!gw_timer_armed(&l->backoff))
                gw_log(GW_LOG_ALERT, "%u worker_connections are not enough", w->nconns);
            if (wc == w->cur && !w->stopping) {
                gw_timer_set(&w->timers, &l->backoff, accept_backoff_done, w->now, ACCEPT_BACKOFF_MS);
                return;
            }
        } else {
            w->stats.accepted++;
            gw_stat_inc(&w->st.handled);
            gw_gauge_add(&w->st.active, 1);
            c->flags |= GW_CONN_ACCEPTED;
            store_peer(&c->peer, &l->slots[slot].ss);
            /* Accepted by an accept armed before a reload: the old
             * configuration serves it (its owner closes it after one
             * exchange, seeing c->wc != w->cur). */
            l->conf->on_accept(w, c, l->conf);
        }
    } else if (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOBUFS || cqe->res == -ENOMEM) {
        /* Out of descriptors or memory: the connection stays in the backlog
         * and an accept re-armed now would fail at once, in a busy loop.
         * Back off; connections closing meanwhile free what is missing. */
        if (!gw_timer_armed(&l->backoff))
            gw_log(GW_LOG_CRIT, "accept() on %s failed (%d: %s), retrying in %u ms", l->conf->text, -cqe->res,
                   strerror(-cqe->res), ACCEPT_BACKOFF_MS);
        if (wc == w->cur && !w->stopping)
            gw_timer_set(&w->timers, &l->backoff, accept_backoff_done, w->now, ACCEPT_BACKOFF_MS);
        return;
    } else if (cqe->res != -ECANCELED && cqe->res != -EAGAIN && cqe->res != -EINTR) {
        gw_log(GW_LOG_ERR, "accept() on %s failed (%d: %s)", l->conf->text, -cqe->res, strerror(-cqe->res));
    }
    if (wc == w->cur && !w->stopping && l->fd >= 0 && cqe->res != -ECANCELED)
        arm_accept(w, wc, i, slot);
    else
        gw_wcycle_conn_gone(w, wc);
}

void gw_wcycle_free_all(gw_worker_t *w)
{
    while (w->old) {
        gw_wcycle_t *wc = w->old;

        w->old = wc->next;
        modules_exit(w, wc);
        free(wc->listeners);
        free(wc);
    }
    if (w->cur) {
        modules_exit(w, w->cur);
        free(w->cur->listeners);
        free(w->cur);
        w->cur = NULL;
    }
}
