/* Buffered appends through the ring (see logbuf.h). */
#include "logbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ring.h"
#include "stats.h"
#include "timer.h"

static gw_logbuf_t *find(gw_worker_t *w, int fd)
{
    for (uint32_t i = 0; i < w->nlogbufs; i++)
        if (w->logbufs[i]->fd == fd)
            return w->logbufs[i];
    return NULL;
}

static gw_logbuf_t *create(gw_worker_t *w, int fd, uint32_t size, uint64_t flush_ms)
{
    gw_logbuf_t **grown = realloc(w->logbufs, (w->nlogbufs + 1) * sizeof(*grown));
    gw_logbuf_t *lb;

    if (grown == NULL)
        return NULL;
    w->logbufs = grown;
    lb = calloc(1, sizeof(*lb));
    if (lb == NULL)
        return NULL;
    lb->fd = fd;
    lb->idx = w->nlogbufs;
    lb->size = size;
    lb->flush_ms = flush_ms;
    w->logbufs[w->nlogbufs++] = lb;
    return lb;
}

/* Submit the gathered bytes as one write (the buffers swap: gathering goes on in the other). */
static void start_write(gw_worker_t *w, gw_logbuf_t *lb)
{
    struct io_uring_sqe *sqe;
    char *b = lb->wbuf;
    uint32_t c = lb->wcap;

    if (lb->writing || lb->len == 0)
        return;
    lb->wbuf = lb->buf;
    lb->wcap = lb->cap;
    lb->wlen = lb->len;
    lb->woff = 0;
    lb->buf = b;
    lb->cap = c;
    lb->len = 0;
    lb->due = 0;
    if (gw_timer_armed(&lb->timer))
        gw_timer_cancel(&w->timers, &lb->timer);
    sqe = gw_ring_sqe(w);
    /* Offset -1: the file position, which O_APPEND makes the end of the file. */
    io_uring_prep_write(sqe, lb->fd, lb->wbuf, lb->wlen, (uint64_t)-1);
    io_uring_sqe_set_data64(sqe, gw_ud(GW_OP_LOGWRITE, lb->idx, 0));
    lb->writing = 1;
    gw_stat_inc(&w->st.log_writes);
}

static void on_flush_timer(void *owner, gw_timer_t *t)
{
    gw_worker_t *w = owner;
    gw_logbuf_t *lb = (gw_logbuf_t *)((char *)t - offsetof(gw_logbuf_t, timer));

    lb->due = 1;
    start_write(w, lb);
}

void gw_logbuf_append(gw_worker_t *w, int fd, const char *data, size_t n, uint32_t size, uint64_t flush_ms)
{
    gw_logbuf_t *lb = find(w, fd);

    if (lb == NULL && (lb = create(w, fd, size, flush_ms)) == NULL) {
        gw_stat_add(&w->st.log_dropped, n);
        return;
    }
    /* Two access_log directives naming one file share its buffer; the last
     * settings seen win (after a reload: the new configuration's). */
    lb->size = size;
    lb->flush_ms = flush_ms;
    if ((uint64_t)lb->len + n > GW_LOGBUF_MAX) {
        gw_stat_add(&w->st.log_dropped, n);
        return;
    }
    if (lb->len + n > lb->cap) {
        uint32_t cap = lb->cap ? lb->cap : (lb->size ? lb->size : 16384);
        char *grown;

        while (cap < lb->len + n)
            cap *= 2;
        grown = realloc(lb->buf, cap);
        if (grown == NULL) {
            gw_stat_add(&w->st.log_dropped, n);
            return;
        }
        lb->buf = grown;
        lb->cap = cap;
    }
    memcpy(lb->buf + lb->len, data, n);
    lb->len += (uint32_t)n;
    if (lb->size == 0 || lb->len >= lb->size) {
        lb->due = 1; /* written at the end of this iteration, with everything else it gathers */
    } else if (lb->flush_ms && !gw_timer_armed(&lb->timer)) {
        gw_timer_set(&w->timers, &lb->timer, on_flush_timer, w->now, lb->flush_ms);
    }
}

void gw_logbuf_flush(gw_worker_t *w, int all)
{
    for (uint32_t i = 0; i < w->nlogbufs; i++) {
        gw_logbuf_t *lb = w->logbufs[i];

        if (lb->len && (lb->due || all))
            start_write(w, lb);
    }
}

void gw_logbuf_handle_write(gw_worker_t *w, struct io_uring_cqe *cqe)
{
    uint32_t idx = gw_ud_idx(cqe->user_data);
    gw_logbuf_t *lb;
    struct io_uring_sqe *sqe;

    if (idx >= w->nlogbufs)
        return;
    lb = w->logbufs[idx];
    lb->writing = 0;
    if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN) {
        static _Thread_local int told;

        if (!told++)
            gw_log(GW_LOG_ALERT, "access log write() failed (%d: %s), lines are lost", -cqe->res,
                   strerror(-cqe->res));
        gw_stat_add(&w->st.log_dropped, lb->wlen - lb->woff);
        lb->wlen = lb->woff = 0;
    } else {
        lb->woff += cqe->res > 0 ? (uint32_t)cqe->res : 0;
        if (lb->woff < lb->wlen) {
            /* A short write (disk full, a signal): the rest goes first, before anything newer. */
            sqe = gw_ring_sqe(w);
            io_uring_prep_write(sqe, lb->fd, lb->wbuf + lb->woff, lb->wlen - lb->woff, (uint64_t)-1);
            io_uring_sqe_set_data64(sqe, gw_ud(GW_OP_LOGWRITE, lb->idx, 0));
            lb->writing = 1;
            return;
        }
    }
    if (lb->due || w->stopping)
        start_write(w, lb);
}

int gw_logbuf_idle(const gw_worker_t *w)
{
    for (uint32_t i = 0; i < w->nlogbufs; i++)
        if (w->logbufs[i]->writing || w->logbufs[i]->len)
            return 0;
    return 1;
}

void gw_logbuf_free_all(gw_worker_t *w)
{
    for (uint32_t i = 0; i < w->nlogbufs; i++) {
        gw_logbuf_t *lb = w->logbufs[i];

        /* The process is ending: a blocking write is the last chance for these lines. */
        if (lb->writing) /* may have landed: writing it again could double lines */
            gw_stat_add(&w->st.log_dropped, lb->wlen - lb->woff);
        if (lb->len && write(lb->fd, lb->buf, lb->len) < 0)
            gw_stat_add(&w->st.log_dropped, lb->len);
        free(lb->buf);
        if (!lb->writing) /* else the kernel may still read it: left to the process' end */
            free(lb->wbuf);
        free(lb);
    }
    free(w->logbufs);
    w->logbufs = NULL;
    w->nlogbufs = 0;
}
