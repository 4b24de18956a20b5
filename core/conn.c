/*
 * Connection I/O on the ring.
 *
 * A slot's life: gw_conn_alloc -> (recv / send / connect / timer)* ->
 * gw_conn_close or gw_conn_finish -> CLOSING until `inflight` drops to 0 ->
 * back on the free list. Operations are counted in `inflight` when submitted
 * and uncounted at their final completion (a multishot recv's last CQE is the
 * one without IORING_CQE_F_MORE), so a slot is never reused while the kernel
 * may still complete something for it, and buffers it still points at stay
 * valid.
 */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw.h"
#include "ring.h"
#include "timer.h"
#include "wcycle.h"

#define LINGER_MS 5000 /* nginx's lingering_timeout */

static void conn_free(gw_worker_t *w, gw_conn_t *c)
{
    gw_wcycle_t *wc = c->wc;

    if (c->flags & GW_CONN_ACCEPTED)
        gw_gauge_add(&w->st.active, -1);
    if (c->layer && c->layer->release)
        c->layer->release(w, c);
    c->layer = NULL;
    c->layer_data = NULL;
    c->flags = 0;
    c->fd = -1;
    c->ops = NULL;
    c->data = NULL;
    c->next_dirty = w->free;
    w->free = c;
    w->active--;
    c->wc = NULL;
    if (wc) {
        wc->conns--;
        gw_wcycle_conn_gone(w, wc);
    }
}

void gw_conn_release_layers(gw_worker_t *w)
{
    for (uint32_t i = 0; w->conns && i < w->used_hwm; i++) {
        gw_conn_t *c = &w->conns[i];

        if ((c->flags & GW_CONN_USED) && c->layer && c->layer->release)
            c->layer->release(w, c);
        c->layer = NULL;
        c->layer_data = NULL;
    }
}

gw_conn_t *gw_conn_alloc(gw_worker_t *w, gw_wcycle_t *wc, int fd)
{
    gw_conn_t *c = w->free;

    if (c) {
        w->free = c->next_dirty;
    } else {
        /* Slots are handed out in order the first time, so the table's pages
         * are only touched as the connection count actually grows. */
        if (w->used_hwm == w->nconns)
            return NULL;
        c = &w->conns[w->used_hwm];
        c->idx = w->used_hwm++;
    }
    c->fd = fd;
    c->gen++;
    c->flags = GW_CONN_USED;
    c->inflight = 0;
    c->sending = 0;
    c->requests = 0;
    c->queued = 0;
    gw_segq_init(&c->out);
    gw_segq_init(&c->wire);
    c->layer = NULL;
    c->layer_data = NULL;
    c->timer.next = c->timer.prev = NULL;
    c->ops = NULL;
    c->data = NULL;
    c->ctx = NULL;
    c->connect_to = NULL;
    c->peer.family = 0;
    c->next_dirty = NULL;
    c->wc = wc;
    if (wc)
        wc->conns++;
    w->active++;
    return c;
}

static uint64_t ud(const gw_conn_t *c, enum gw_op op)
{
    return gw_ud(op, c->idx, c->gen);
}

static void arm_recv(gw_worker_t *w, gw_conn_t *c)
{
    struct io_uring_sqe *sqe = gw_ring_sqe(w);

    if (w->ring_features & GW_RING_RECV_MULTISHOT)
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    else
        io_uring_prep_recv(sqe, c->fd, NULL, w->bufs.size, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = w->bufs.bgid;
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_RECV));
    c->flags |= GW_CONN_RECV_ARMED;
    c->inflight++;
}

void gw_conn_recv_start(gw_worker_t *w, gw_conn_t *c)
{
    if (c->flags & (GW_CONN_CLOSING | GW_CONN_READ_EOF))
        return;
    c->flags |= GW_CONN_RECV_WANTED;
    /* Armed (even if a cancel is on its way): the final completion re-arms. */
    if (!(c->flags & (GW_CONN_RECV_ARMED | GW_CONN_STARVED)))
        arm_recv(w, c);
}

void gw_conn_recv_stop(gw_worker_t *w, gw_conn_t *c)
{
    struct io_uring_sqe *sqe;

    c->flags &= (uint16_t)~GW_CONN_RECV_WANTED;
    if (!(c->flags & GW_CONN_RECV_ARMED) || (c->flags & GW_CONN_RECV_CANCELING))
        return;
    sqe = gw_ring_sqe(w);
    io_uring_prep_cancel64(sqe, ud(c, GW_OP_RECV), 0);
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_CANCEL));
    c->flags |= GW_CONN_RECV_CANCELING;
    c->inflight++;
}

static void mark_dirty(gw_worker_t *w, gw_conn_t *c)
{
    if (c->flags & GW_CONN_DIRTY)
        return;
    c->flags |= GW_CONN_DIRTY;
    c->next_dirty = w->dirty;
    w->dirty = c;
}

/* The queue sends are made from: a layer that encodes fills `wire` from `out`. */
static gw_segq_t *sendq(gw_conn_t *c)
{
    return c->layer && c->layer->encode ? &c->wire : &c->out;
}

static int has_output(const gw_conn_t *c)
{
    return c->out.bytes || c->wire.bytes;
}

static void push_to(gw_worker_t *w, gw_conn_t *c, gw_segq_t *q, const char *data, uint32_t len, int32_t bid,
                    void *block)
{
    gw_seg_t *s;

    if (len == 0 || (c->flags & GW_CONN_CLOSING)) {
        if (bid >= 0)
            gw_buf_unref(&w->bufs, (uint32_t)bid);
        else if (bid == GW_SEG_HEAP)
            free(block);
        return;
    }
    s = gw_seg_alloc(&w->segs);
    if (s == NULL)
        abort(); /* out of memory on the request path: nothing sane left to do */
    s->data = data;
    s->len = len;
    s->bid = bid;
    s->block = block;
    if (q == &c->out)
        c->queued += len; /* plaintext positions ($bytes_sent); a layer's records are not counted */
    gw_segq_push(q, s);
    mark_dirty(w, c);
}

static void push(gw_worker_t *w, gw_conn_t *c, const char *data, uint32_t len, int32_t bid, void *block)
{
    push_to(w, c, &c->out, data, len, bid, block);
}

void gw_conn_kick(gw_worker_t *w, gw_conn_t *c)
{
    if (!(c->flags & GW_CONN_CLOSING))
        mark_dirty(w, c);
}

void gw_conn_send_wire(gw_worker_t *w, gw_conn_t *c, void *block, const char *data, uint32_t len)
{
    push_to(w, c, &c->wire, data, len, GW_SEG_HEAP, block);
}

void gw_conn_send_buf(gw_worker_t *w, gw_conn_t *c, const char *data, uint32_t len, uint32_t bid)
{
    if (len == 0)
        return;
    gw_buf_ref(&w->bufs, bid);
    push(w, c, data, len, (int32_t)bid, NULL);
}

void gw_conn_send_heap(gw_worker_t *w, gw_conn_t *c, void *block, const char *data, uint32_t len)
{
    push(w, c, data, len, GW_SEG_HEAP, block);
}

void gw_conn_send_static(gw_worker_t *w, gw_conn_t *c, const char *data, uint32_t len)
{
    push(w, c, data, len, GW_SEG_STATIC, NULL);
}

int gw_conn_take_output(gw_worker_t *w, gw_conn_t *c, gw_segq_t *q)
{
    if (c->flags & GW_CONN_SENDING)
        return -EBUSY;
    *q = c->out;
    if (q->head == NULL)
        q->tailp = &q->head;
    gw_segq_init(&c->out);
    return 0;
}

void gw_conn_send_queue(gw_worker_t *w, gw_conn_t *c, gw_segq_t *q)
{
    if (q->head == NULL)
        return;
    if (c->flags & GW_CONN_CLOSING) {
        gw_segq_clear(q, &w->segs, &w->bufs);
        return;
    }
    c->queued += q->bytes;
    *c->out.tailp = q->head;
    c->out.tailp = q->tailp;
    c->out.bytes += q->bytes;
    c->out.count += q->count;
    gw_segq_init(q);
    mark_dirty(w, c);
}

static void prep_connect(gw_worker_t *w, gw_conn_t *c, const gw_addr_t *addr)
{
    struct io_uring_sqe *sqe = gw_ring_sqe(w);

    io_uring_prep_connect(sqe, c->fd, (const struct sockaddr *)&addr->ss, addr->len);
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_CONNECT));
    c->inflight++;
}

/* Requests and bodies leave in whole sendmsg batches; Nagle would only hold
 * back the tail of one waiting for an ACK. */
static const int one = 1;

gw_conn_t *gw_conn_connect(gw_worker_t *w, gw_wcycle_t *wc, const gw_addr_t *addr, const gw_conn_ops_t *ops,
                           void *data, int *err)
{
    struct io_uring_sqe *sqe;
    gw_conn_t *c;
    int fd = -1;

    if (!(w->ring_features & GW_RING_SOCKET_CMD)) {
        fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            *err = -errno;
            return NULL;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c = gw_conn_alloc(w, wc, fd);
    if (c == NULL) {
        if (fd >= 0)
            close(fd);
        *err = -EMFILE;
        return NULL;
    }
    c->ops = ops;
    c->data = data;
    c->flags |= GW_CONN_CONNECTING;
    if (fd >= 0) {
        prep_connect(w, c, addr);
        return c;
    }
    /* No syscall on the request path: the socket is made through the ring;
     * TCP_NODELAY and the connect follow when it arrives (handle_socket). */
    c->connect_to = addr;
    sqe = gw_ring_sqe(w);
    io_uring_prep_socket(sqe, addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0);
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_SOCKET));
    c->inflight++;
    return c;
}

void gw_conn_handle_socket(gw_worker_t *w, gw_conn_t *c, int res)
{
    struct io_uring_sqe *sqe;

    c->inflight--;
    if (c->flags & GW_CONN_CLOSING) {
        if (res >= 0) { /* closed while the socket was being made: close it too */
            sqe = gw_ring_sqe(w);
            io_uring_prep_close(sqe, res);
            io_uring_sqe_set_data64(sqe, gw_ud(GW_OP_NONE, 0, 0));
        }
        return;
    }
    if (res < 0) {
        c->flags &= (uint16_t)~GW_CONN_CONNECTING;
        c->ops->on_connect(w, c, res);
        return;
    }
    c->fd = res;
    sqe = gw_ring_sqe(w);
    gw_ring_prep_setsockopt(sqe, c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_SOCKOPT));
    sqe->flags |= IOSQE_IO_HARDLINK; /* connect even if NODELAY failed */
    c->inflight++;
    prep_connect(w, c, c->connect_to);
    c->connect_to = NULL;
}

static void on_timer(void *owner, gw_timer_t *t)
{
    gw_worker_t *w = owner;
    gw_conn_t *c = gw_container_of(t, gw_conn_t, timer);

    if (c->flags & GW_CONN_LINGER) {
        gw_conn_close(w, c);
        return;
    }
    if (!(c->flags & GW_CONN_CLOSING) && c->ops->on_timeout)
        c->ops->on_timeout(w, c);
}

void gw_conn_timer(gw_worker_t *w, gw_conn_t *c, uint64_t ms)
{
    gw_timer_set(&w->timers, &c->timer, on_timer, w->now, ms);
}

void gw_conn_timer_off(gw_worker_t *w, gw_conn_t *c)
{
    gw_timer_cancel(&w->timers, &c->timer);
}

static void cancel_linked(gw_worker_t *w, gw_conn_t *c, enum gw_op op)
{
    struct io_uring_sqe *sqe = gw_ring_sqe(w);

    io_uring_prep_cancel64(sqe, ud(c, op), 0);
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_CANCEL));
    sqe->flags |= IOSQE_IO_HARDLINK;
    c->inflight++;
}

void gw_conn_close(gw_worker_t *w, gw_conn_t *c)
{
    struct io_uring_sqe *sqe;

    if (c->flags & GW_CONN_CLOSING)
        return;
    c->flags |= GW_CONN_CLOSING;
    c->flags &= (uint16_t)~(GW_CONN_RECV_WANTED | GW_CONN_CLOSE_ON_DRAIN);
    gw_timer_cancel(&w->timers, &c->timer);
    /* What is not in the kernel yet can go now; a send in flight still reads
     * its segments, they go when it completes. */
    if (!(c->flags & GW_CONN_SENDING)) {
        gw_segq_clear(&c->out, &w->segs, &w->bufs);
        gw_segq_clear(&c->wire, &w->segs, &w->bufs);
    }
    /* Cancel what is in the kernel, each by its user_data, then close (hard
     * links: the close runs whatever the cancels found). By user_data, not by
     * fd: the kernel finds a request by user_data in its hash table, while a
     * cancel by fd walks every pending request, which with thousands of
     * connections costs more than the rest of the close. */
    if ((c->flags & GW_CONN_RECV_ARMED) && !(c->flags & GW_CONN_RECV_CANCELING))
        cancel_linked(w, c, GW_OP_RECV);
    if (c->flags & GW_CONN_SENDING)
        cancel_linked(w, c, GW_OP_SEND);
    if (c->flags & GW_CONN_CONNECTING)
        cancel_linked(w, c, c->fd < 0 ? GW_OP_SOCKET : GW_OP_CONNECT);
    /* A shutdown may wait in io-wq, where the kernel looks the fd up only when
     * it runs: after our close, that number may already be a new upstream
     * socket, whose write side it would shut (EPIPE on its first send). */
    if (c->flags & (GW_CONN_LINGER | GW_CONN_SHUT_WR))
        cancel_linked(w, c, GW_OP_SHUTDOWN);
    if (c->fd < 0)
        return; /* the socket is still being made: handle_socket closes it */
    sqe = gw_ring_sqe(w);
    io_uring_prep_close(sqe, c->fd);
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_CLOSE));
    c->inflight++;
}

void gw_conn_shutdown(gw_worker_t *w, gw_conn_t *c)
{
    struct io_uring_sqe *sqe;

    if (c->flags & (GW_CONN_CLOSING | GW_CONN_SHUT_WR))
        return;
    sqe = gw_ring_sqe(w);
    io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_SHUTDOWN));
    c->inflight++;
    c->flags |= GW_CONN_SHUT_WR;
}

static void start_linger(gw_worker_t *w, gw_conn_t *c)
{
    struct io_uring_sqe *sqe;

    if (c->flags & GW_CONN_READ_EOF) { /* nothing left to linger for */
        gw_conn_close(w, c);
        return;
    }
    sqe = gw_ring_sqe(w);
    io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_SHUTDOWN));
    c->inflight++;
    c->flags |= GW_CONN_LINGER;
    gw_timer_set(&w->timers, &c->timer, on_timer, w->now, LINGER_MS);
    gw_conn_recv_start(w, c);
}

void gw_conn_finish(gw_worker_t *w, gw_conn_t *c, int linger)
{
    if (c->flags & (GW_CONN_CLOSING | GW_CONN_LINGER))
        return;
    if (has_output(c) || (c->flags & GW_CONN_SENDING)) {
        c->flags |= GW_CONN_CLOSE_ON_DRAIN | (linger ? GW_CONN_LINGER_ON_DRAIN : 0);
        return;
    }
    if (c->layer && c->layer->encode) {
        /* Nothing queued, but the layer may have a last word (TLS: close_notify):
         * one more flush lets it speak; flush_conn closes when it had none. */
        c->flags |= GW_CONN_CLOSE_ON_DRAIN | (linger ? GW_CONN_LINGER_ON_DRAIN : 0);
        mark_dirty(w, c);
        return;
    }
    if (linger)
        start_linger(w, c);
    else
        gw_conn_close(w, c);
}

static void drained(gw_worker_t *w, gw_conn_t *c)
{
    if (c->flags & GW_CONN_CLOSE_ON_DRAIN) {
        int linger = (c->flags & GW_CONN_LINGER_ON_DRAIN) != 0;

        c->flags &= (uint16_t)~(GW_CONN_CLOSE_ON_DRAIN | GW_CONN_LINGER_ON_DRAIN);
        if (linger)
            start_linger(w, c);
        else
            gw_conn_close(w, c);
        return;
    }
    if (c->ops->on_sent)
        c->ops->on_sent(w, c);
}

static void add_starved(gw_worker_t *w, gw_conn_t *c)
{
    if (w->nstarved == w->starved_cap) {
        uint32_t cap = w->starved_cap ? w->starved_cap * 2 : 64;
        uint32_t *n = realloc(w->starved, cap * sizeof(*n));

        if (n == NULL) {
            gw_conn_close(w, c); /* cannot even remember to retry it */
            return;
        }
        w->starved = n;
        w->starved_cap = cap;
    }
    c->flags |= GW_CONN_STARVED;
    w->starved[w->nstarved++] = c->idx;
}

void gw_conn_handle_recv(gw_worker_t *w, gw_conn_t *c, struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;

    if (!more) {
        c->inflight--;
        c->flags &= (uint16_t)~(GW_CONN_RECV_ARMED | GW_CONN_RECV_CANCELING);
    }
    if (res > 0) {
        uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

        gw_buf_taken(&w->bufs, bid);
        if (c->flags & GW_CONN_ACCEPTED)
            gw_stat_add(&w->st.bytes_in, (uint64_t)res);
        if (c->flags & (GW_CONN_CLOSING | GW_CONN_LINGER)) {
            gw_buf_unref(&w->bufs, bid);
            if ((c->flags & GW_CONN_LINGER) && !(c->flags & GW_CONN_CLOSING))
                gw_timer_set(&w->timers, &c->timer, on_timer, w->now, LINGER_MS);
        } else if (c->layer && c->layer->on_data) {
            c->layer->on_data(w, c, gw_buf_data(&w->bufs, bid), (uint32_t)res, bid);
        } else {
            c->ops->on_data(w, c, gw_buf_data(&w->bufs, bid), (uint32_t)res, bid);
        }
    } else if (res == 0 || (res < 0 && res != -ENOBUFS && res != -ECANCELED)) {
        c->flags |= GW_CONN_READ_EOF;
        c->flags &= (uint16_t)~GW_CONN_RECV_WANTED;
        if (c->flags & GW_CONN_LINGER)
            gw_conn_close(w, c);
        else if (!(c->flags & GW_CONN_CLOSING) && c->layer && c->layer->on_eof)
            c->layer->on_eof(w, c, res);
        else if (!(c->flags & GW_CONN_CLOSING))
            c->ops->on_eof(w, c, res);
        return;
    } else if (res == -ENOBUFS) {
        /* Backpressure, not an error: every buffer is held, by output still
         * being sent above all. Retry when some come back; the owner hears
         * of it and may rather wait for its peer to drain (on_starved). */
        gw_stat_inc(&w->st.buf_waits);
        if (!more && (c->flags & GW_CONN_RECV_WANTED) && !(c->flags & GW_CONN_CLOSING)) {
            add_starved(w, c);
            if ((c->flags & GW_CONN_STARVED) && c->ops->on_starved)
                c->ops->on_starved(w, c);
        }
        return;
    }
    /* Not if on_data armed one already (a connection handed to a pool, say):
     * a second recv would hold the socket open after a cancel finds the first. */
    if (!more && (c->flags & GW_CONN_RECV_WANTED) &&
        !(c->flags & (GW_CONN_CLOSING | GW_CONN_READ_EOF | GW_CONN_RECV_ARMED | GW_CONN_STARVED)))
        arm_recv(w, c);
}

void gw_conn_handle_send(gw_worker_t *w, gw_conn_t *c, int res)
{
    c->inflight--;
    c->flags &= (uint16_t)~GW_CONN_SENDING;
    c->sending = 0;
    if (c->flags & GW_CONN_CLOSING) {
        gw_segq_clear(&c->out, &w->segs, &w->bufs);
        gw_segq_clear(&c->wire, &w->segs, &w->bufs);
        return;
    }
    if (res < 0) {
        gw_segq_clear(&c->out, &w->segs, &w->bufs);
        gw_segq_clear(&c->wire, &w->segs, &w->bufs);
        c->flags &= (uint16_t)~(GW_CONN_CLOSE_ON_DRAIN | GW_CONN_LINGER_ON_DRAIN);
        if (c->ops->on_send_error)
            c->ops->on_send_error(w, c, res);
        else
            gw_conn_close(w, c);
        return;
    }
    if (c->flags & GW_CONN_ACCEPTED)
        gw_stat_add(&w->st.bytes_out, (uint64_t)res);
    gw_segq_consume(sendq(c), &w->segs, &w->bufs, (uint32_t)res);
    if (has_output(c))
        mark_dirty(w, c); /* short send or more queued meanwhile */
    else
        drained(w, c);
}

void gw_conn_handle_connect(gw_worker_t *w, gw_conn_t *c, int res)
{
    c->inflight--;
    c->flags &= (uint16_t)~GW_CONN_CONNECTING;
    if (c->flags & GW_CONN_CLOSING)
        return;
    if (res == 0 && has_output(c))
        mark_dirty(w, c);
    c->ops->on_connect(w, c, res);
}

void gw_conn_handle_done(gw_worker_t *w, gw_conn_t *c)
{
    c->inflight--;
}

/* Put the head of q into one send: a plain send for one piece, sendmsg for several. */
static void flush_one(gw_worker_t *w, gw_conn_t *c, gw_segq_t *q)
{
    struct io_uring_sqe *sqe;
    struct msghdr *msg;
    struct iovec *iov;
    gw_seg_t *s = q->head;
    uint32_t n = 0, bytes = 0;

    if (s->next == NULL) {
        sqe = gw_ring_sqe(w);
        io_uring_prep_send(sqe, c->fd, s->data, s->len, MSG_NOSIGNAL);
        bytes = s->len;
    } else {
        /* Make room before taking the SQE: a submit forced by a full SQ
         * would otherwise hand the kernel an SQE we have not filled. */
        if (w->msg_used == GW_SCRATCH_MSGS || w->iov_used + GW_SEND_MAX_IOV > GW_SCRATCH_IOVS ||
            io_uring_sq_space_left(&w->ring) == 0) {
            io_uring_submit(&w->ring);
            w->iov_used = 0;
            w->msg_used = 0;
        }
        sqe = gw_ring_sqe(w);
        msg = &w->msg_scratch[w->msg_used++];
        iov = &w->iov_scratch[w->iov_used];
        for (; s && n < GW_SEND_MAX_IOV; s = s->next, n++) {
            iov[n].iov_base = (void *)(uintptr_t)s->data;
            iov[n].iov_len = s->len;
            bytes += s->len;
        }
        w->iov_used += n;
        memset(msg, 0, sizeof(*msg));
        msg->msg_iov = iov;
        msg->msg_iovlen = n;
        io_uring_prep_sendmsg(sqe, c->fd, msg, MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(sqe, ud(c, GW_OP_SEND));
    c->flags |= GW_CONN_SENDING;
    c->sending = bytes;
    c->inflight++;
}

static void flush_conn(gw_worker_t *w, gw_conn_t *c)
{
    gw_segq_t *q;

    if (c->layer && c->layer->encode) {
        c->layer->encode(w, c); /* may close c, or switch the layer off (kTLS) */
        if (c->flags & GW_CONN_CLOSING)
            return;
    }
    q = sendq(c);
    if (q->head)
        flush_one(w, c, q);
    else if ((c->flags & GW_CONN_CLOSE_ON_DRAIN) && !has_output(c))
        drained(w, c); /* finishing, and the layer had nothing more to say */
}

void gw_conn_flush_all(gw_worker_t *w)
{
    gw_conn_t *c = w->dirty;

    w->dirty = NULL;
    while (c) {
        gw_conn_t *next = c->next_dirty;

        c->flags &= (uint16_t)~GW_CONN_DIRTY;
        c->next_dirty = NULL;
        if (c->flags & GW_CONN_CLOSING)
            gw_conn_maybe_free(w, c);
        else if (!(c->flags & (GW_CONN_SENDING | GW_CONN_CONNECTING)))
            flush_conn(w, c);
        c = next;
    }
}

void gw_conn_rearm_starved(gw_worker_t *w)
{
    uint32_t n = w->nstarved;

    /* Wait for a useful share of the ring to be free: re-arming on every
     * returned buffer would spin on ENOBUFS while slow clients drain. */
    if (n == 0 || w->bufs.nbufs - w->bufs.held < w->bufs.nbufs / 8)
        return;
    w->nstarved = 0;
    for (uint32_t i = 0; i < n; i++) {
        gw_conn_t *c = &w->conns[w->starved[i]];

        c->flags &= (uint16_t)~GW_CONN_STARVED;
        if (c->flags & GW_CONN_CLOSING)
            gw_conn_maybe_free(w, c);
        else if ((c->flags & GW_CONN_RECV_WANTED) && !(c->flags & (GW_CONN_RECV_ARMED | GW_CONN_READ_EOF)))
            arm_recv(w, c);
    }
}

/* Called by the worker after each completion: free the slot once nothing refers to it. */
void gw_conn_maybe_free(gw_worker_t *w, gw_conn_t *c)
{
    if ((c->flags & GW_CONN_CLOSING) && c->inflight == 0 && !(c->flags & GW_CONN_DIRTY) &&
        !(c->flags & GW_CONN_STARVED))
        conn_free(w, c);
}
