/*
 * Tests for core/conn.c: the connection table's bookkeeping (slots handed
 * out in order, generations, LIFO reuse, when a closing slot may be freed),
 * then the I/O on a real io_uring over socketpairs: the output queue and the
 * dirty list, flushing (one send, or one sendmsg for several pieces), recv
 * with provided buffers (multishot and single-shot), stopping, EOF, close
 * (twice), finish with and without lingering, timers, and the ENOBUFS
 * starvation path (the owner told, and free to stop reading meanwhile). A small loop below stands in for the worker's: flush,
 * re-arm starved, commit buffers, submit and wait, dispatch completions.
 *
 * The table tests run anywhere; the rest needs io_uring and exits 77 without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/gw.h"
#include "core/ring.h"
#include "core/timer.h"
#include "tests/unit/test.h"

#define NBUFS 8
#define BUFSZ 4096

/* RUN with an argument. */
#define RUN_MODE(fn, arg)                                                                                              \
    do {                                                                                                               \
        int _before = gw_test_failures;                                                                                \
        fn(arg);                                                                                                       \
        fprintf(stderr, "%s %s(%d)\n", gw_test_failures == _before ? "ok  " : "FAIL", #fn, (int)(arg));                \
    } while (0)

static gw_worker_t *new_worker(uint32_t nconns)
{
    gw_worker_t *w = calloc(1, sizeof(*w));

    w->nconns = nconns;
    w->conns = calloc(nconns, sizeof(*w->conns));
    w->now = 1000;
    gw_wheel_init(&w->timers, w, w->now);
    return w;
}

static void free_worker(gw_worker_t *w)
{
    gw_seg_cache_free(&w->segs);
    free(w->starved);
    free(w->conns);
    free(w);
}

/* ---- the table, no ring needed ---- */

static void test_alloc_in_order(void)
{
    gw_worker_t *w = new_worker(4);
    gw_conn_t *c[4];

    for (int i = 0; i < 4; i++) {
        c[i] = gw_conn_alloc(w, NULL, 100 + i);
        CHECK(c[i] == &w->conns[i]);
        if (c[i] == NULL)
            return;
        CHECK_INT(c[i]->idx, i);
        CHECK_INT(c[i]->gen, 1);
        CHECK_INT(c[i]->fd, 100 + i);
        CHECK_INT(c[i]->flags, GW_CONN_USED);
        CHECK_INT(c[i]->inflight, 0);
        CHECK(c[i]->out.head == NULL);
        CHECK_INT(c[i]->out.bytes, 0);
        CHECK(!gw_timer_armed(&c[i]->timer));
        CHECK(gw_conn_at(w, (uint32_t)i) == c[i]);
        CHECK_INT(w->active, i + 1);
        CHECK_INT(w->used_hwm, i + 1);
    }
    /* full */
    CHECK(gw_conn_alloc(w, NULL, 200) == NULL);
    CHECK(gw_conn_alloc(w, NULL, 201) == NULL);
    CHECK_INT(w->active, 4);
    CHECK_INT(w->used_hwm, 4);
    free_worker(w);

    /* a table of zero slots is always full */
    w = new_worker(0);
    CHECK(gw_conn_alloc(w, NULL, 1) == NULL);
    CHECK_INT(w->active, 0);
    free_worker(w);
}

static void close_by_hand(gw_conn_t *c)
{
    c->flags |= GW_CONN_CLOSING;
    c->inflight = 0;
}

static void test_free_and_reuse(void)
{
    gw_worker_t *w = new_worker(4);
    gw_conn_t *c[4], *r;

    for (int i = 0; i < 4; i++)
        c[i] = gw_conn_alloc(w, NULL, 10 + i);

    /* not closing: never freed */
    gw_conn_maybe_free(w, c[2]);
    CHECK_INT(c[2]->flags, GW_CONN_USED);
    CHECK_INT(w->active, 4);

    /* closing with operations still in the kernel: kept */
    c[2]->flags |= GW_CONN_CLOSING;
    c[2]->inflight = 2;
    gw_conn_maybe_free(w, c[2]);
    CHECK(c[2]->flags & GW_CONN_USED);
    CHECK_INT(w->active, 4);
    c[2]->inflight = 0;

    /* closing but still on the dirty list, or waiting for buffers: kept */
    c[2]->flags |= GW_CONN_DIRTY;
    gw_conn_maybe_free(w, c[2]);
    CHECK(c[2]->flags & GW_CONN_USED);
    c[2]->flags = (uint16_t)(c[2]->flags & ~GW_CONN_DIRTY) | GW_CONN_STARVED;
    gw_conn_maybe_free(w, c[2]);
    CHECK(c[2]->flags & GW_CONN_USED);
    CHECK_INT(w->active, 4);
    c[2]->flags &= (uint16_t)~GW_CONN_STARVED;

    /* now it goes */
    c[2]->requests = 7;
    c[2]->data = w;
    gw_conn_maybe_free(w, c[2]);
    CHECK_INT(c[2]->flags, 0);
    CHECK_INT(c[2]->fd, -1);
    CHECK(c[2]->data == NULL);
    CHECK(c[2]->ops == NULL);
    CHECK_INT(w->active, 3);
    CHECK(w->free == c[2]);
    /* freeing a free slot again changes nothing */
    gw_conn_maybe_free(w, c[2]);
    CHECK_INT(w->active, 3);
    CHECK(w->free == c[2]);

    /* reused: same slot, next generation, fresh state */
    r = gw_conn_alloc(w, NULL, 50);
    CHECK(r == c[2]);
    CHECK_INT(r->idx, 2);
    CHECK_INT(r->gen, 2);
    CHECK_INT(r->fd, 50);
    CHECK_INT(r->flags, GW_CONN_USED);
    CHECK_INT(r->requests, 0);
    CHECK(r->data == NULL);
    CHECK(r->next_dirty == NULL);
    CHECK_INT(w->active, 4);
    CHECK(gw_conn_alloc(w, NULL, 51) == NULL);

    /* LIFO: the last freed is the first reused */
    close_by_hand(c[1]);
    gw_conn_maybe_free(w, c[1]);
    close_by_hand(c[3]);
    gw_conn_maybe_free(w, c[3]);
    close_by_hand(c[0]);
    gw_conn_maybe_free(w, c[0]);
    CHECK_INT(w->active, 1);
    CHECK(gw_conn_alloc(w, NULL, 60) == c[0]);
    CHECK(gw_conn_alloc(w, NULL, 61) == c[3]);
    CHECK(gw_conn_alloc(w, NULL, 62) == c[1]);
    CHECK(gw_conn_alloc(w, NULL, 63) == NULL);
    CHECK_INT(c[0]->gen, 2);
    CHECK_INT(c[3]->gen, 2);
    CHECK_INT(c[1]->gen, 2);
    CHECK_INT(w->active, 4);
    CHECK_INT(w->used_hwm, 4);

    /* many cycles on one slot: the generation keeps counting */
    for (int i = 0; i < 1000; i++) {
        close_by_hand(c[3]);
        gw_conn_maybe_free(w, c[3]);
        CHECK(gw_conn_alloc(w, NULL, 70) == c[3]);
    }
    CHECK_INT(c[3]->gen, 1002);
    CHECK_INT(w->active, 4);

    /* the generation is what makes a stale completion recognisable */
    {
        uint64_t ud = gw_ud(GW_OP_RECV, c[3]->idx, c[3]->gen - 1);

        CHECK_INT(gw_ud_idx(ud), 3);
        CHECK(gw_ud_gen(ud) != (c[3]->gen & 0xffffffu));
        CHECK_INT(gw_ud_op(ud), GW_OP_RECV);
    }
    free_worker(w);
}

/* ---- I/O on a real ring ---- */

typedef struct rec {
    char got[256 * 1024];
    size_t got_len;
    int data_calls, eofs, eof_err, sent, send_errs, send_err, connects, connect_res, timeouts;
    int starved;         /* on_starved calls */
    int stop_on_starved; /* ... which then stop reading */
    int hold;            /* keep the buffers on_data gets */
    uint32_t held[4096]; /* ... their ids */
    int nheld;
} rec_t;

static void on_data(gw_worker_t *w, gw_conn_t *c, char *data, uint32_t len, uint32_t bid)
{
    rec_t *r = c->data;

    CHECK(data == gw_buf_data(&w->bufs, bid));
    CHECK_INT(w->bufs.refs[bid], 1);
    if (r->got_len + len <= sizeof(r->got)) {
        memcpy(r->got + r->got_len, data, len);
        r->got_len += len;
    }
    r->data_calls++;
    if (r->hold)
        r->held[r->nheld++] = bid;
    else
        gw_buf_unref(&w->bufs, bid);
}

static void on_eof(gw_worker_t *w, gw_conn_t *c, int err)
{
    rec_t *r = c->data;

    (void)w;
    r->eofs++;
    r->eof_err = err;
}

static void on_sent(gw_worker_t *w, gw_conn_t *c)
{
    rec_t *r = c->data;

    (void)w;
    r->sent++;
}

static void on_send_error(gw_worker_t *w, gw_conn_t *c, int err)
{
    rec_t *r = c->data;

    r->send_errs++;
    r->send_err = err;
    gw_conn_close(w, c);
}

static void on_connect(gw_worker_t *w, gw_conn_t *c, int res)
{
    rec_t *r = c->data;

    (void)w;
    r->connects++;
    r->connect_res = res;
}

static void on_timeout(gw_worker_t *w, gw_conn_t *c)
{
    rec_t *r = c->data;

    (void)w;
    r->timeouts++;
}

static void on_starved(gw_worker_t *w, gw_conn_t *c)
{
    rec_t *r = c->data;

    CHECK(c->flags & GW_CONN_STARVED);
    r->starved++;
    if (r->stop_on_starved)
        gw_conn_recv_stop(w, c);
}

static const gw_conn_ops_t ops = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_sent = on_sent,
    .on_send_error = on_send_error,
    .on_connect = on_connect,
    .on_timeout = on_timeout,
    .on_starved = on_starved,
};

static int stale_completions;

/* The worker's dispatch (core/worker.c), for connection operations. */
static void dispatch(gw_worker_t *w, struct io_uring_cqe *cqe)
{
    uint64_t data = cqe->user_data;
    enum gw_op op = gw_ud_op(data);
    gw_conn_t *c;

    if (op == GW_OP_NONE)
        return;
    c = &w->conns[gw_ud_idx(data)];
    if (!(c->flags & GW_CONN_USED) || (c->gen & 0xffffffu) != gw_ud_gen(data)) {
        stale_completions++;
        return;
    }
    switch (op) {
    case GW_OP_RECV:
        gw_conn_handle_recv(w, c, cqe);
        break;
    case GW_OP_SEND:
        gw_conn_handle_send(w, c, cqe->res);
        break;
    case GW_OP_CONNECT:
        gw_conn_handle_connect(w, c, cqe->res);
        break;
    case GW_OP_CLOSE:
    case GW_OP_CANCEL:
    case GW_OP_SHUTDOWN:
        gw_conn_handle_done(w, c);
        break;
    default:
        break;
    }
    gw_conn_maybe_free(w, c);
}

/* One loop iteration; waits at most `ms` for a completion. Returns how many were dispatched. */
static unsigned loop_once(gw_worker_t *w, int ms)
{
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)ms * 1000000};
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    gw_conn_flush_all(w);
    gw_conn_rearm_starved(w);
    gw_bufring_commit(&w->bufs);
    io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
    w->iov_used = 0;
    w->msg_used = 0;
    io_uring_for_each_cqe(&w->ring, head, cqe)
    {
        dispatch(w, cqe);
        n++;
    }
    io_uring_cq_advance(&w->ring, n);
    return n;
}

/* Loop until cond holds (checked between iterations), for at most ~3 s. */
#define LOOP_UNTIL(w, cond)                                                                                            \
    do {                                                                                                               \
        int _i;                                                                                                        \
        for (_i = 0; _i < 300 && !(cond); _i++)                                                                        \
            loop_once((w), 10);                                                                                        \
        CHECK(cond);                                                                                                   \
    } while (0)

/* Loop until nothing arrives for a while (everything in flight has completed). */
static void settle(gw_worker_t *w)
{
    for (int quiet = 0, i = 0; quiet < 3 && i < 300; i++)
        quiet = loop_once(w, 10) ? 0 : quiet + 1;
}

static gw_worker_t *ring_worker(uint32_t nconns, int multishot)
{
    gw_worker_t *w = new_worker(nconns);

    /* main() checked that both work */
    if (io_uring_queue_init(64, &w->ring, 0) < 0 || gw_bufring_init(&w->bufs, &w->ring, 0, NBUFS, BUFSZ) < 0) {
        fprintf(stderr, "io_uring setup failed\n");
        abort();
    }
    w->ring_features = multishot ? GW_RING_RECV_MULTISHOT : 0;
    return w;
}

static void ring_worker_free(gw_worker_t *w)
{
    settle(w);
    CHECK_INT(w->bufs.held, 0); /* every buffer given back */
    CHECK_INT(stale_completions, 0);
    gw_bufring_free(&w->bufs, &w->ring);
    io_uring_queue_exit(&w->ring);
    free_worker(w);
}

static gw_conn_t *pair_conn(gw_worker_t *w, int *peer, rec_t *r)
{
    int sv[2];
    gw_conn_t *c;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        CHECK(!"socketpair");
        return NULL;
    }
    /* the connection's side blocking, as accepted sockets are; the test reads its side without waiting */
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    c = gw_conn_alloc(w, NULL, sv[0]);
    CHECK(c != NULL);
    c->ops = &ops;
    c->data = r;
    *peer = sv[1];
    return c;
}

/* Everything the peer can read now (non-blocking). */
static size_t drain_peer(int fd, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t k;

    while (n < size && (k = read(fd, buf + n, size - n)) > 0)
        n += (size_t)k;
    if (n < size)
        buf[n] = '\0';
    return n;
}

static char *heap_copy(const char *s)
{
    return strdup(s);
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void test_send_queue(int multishot)
{
    gw_worker_t *w = ring_worker(8, multishot);
    static rec_t r1, r2;
    int p1, p2;
    gw_conn_t *c1, *c2;
    char buf[256], *block;

    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    c1 = pair_conn(w, &p1, &r1);
    c2 = pair_conn(w, &p2, &r2);

    gw_conn_send_static(w, c1, "GET / ", 6);
    CHECK_INT(c1->out.bytes, 6);
    CHECK_INT(c1->out.count, 1);
    CHECK(c1->flags & GW_CONN_DIRTY);
    CHECK(w->dirty == c1);
    CHECK(c1->next_dirty == NULL);
    block = heap_copy("xxHTTP/1.1\r\n");
    gw_conn_send_heap(w, c1, block, block + 2, 10);
    CHECK_INT(c1->out.bytes, 16);
    CHECK_INT(c1->out.count, 2);
    CHECK(w->dirty == c1); /* listed once */
    CHECK(c1->next_dirty == NULL);
    /* empty pieces queue nothing; a heap block is freed at once (ASan: no leak) */
    gw_conn_send_static(w, c1, "", 0);
    gw_conn_send_heap(w, c1, heap_copy("unused"), "", 0);
    gw_conn_send_buf(w, c1, "", 0, 0);
    CHECK_INT(w->bufs.refs[0], 0);
    CHECK_INT(c1->out.count, 2);
    CHECK_INT(c1->out.bytes, 16);

    gw_conn_send_static(w, c2, "pong", 4);
    CHECK(w->dirty == c2);
    CHECK(c2->next_dirty == c1);

    /* one flush: both sends go out, the list is emptied */
    gw_conn_flush_all(w);
    CHECK(w->dirty == NULL);
    CHECK(!(c1->flags & GW_CONN_DIRTY));
    CHECK(c1->flags & GW_CONN_SENDING);
    CHECK_INT(c1->sending, 16);
    CHECK_INT(c1->inflight, 1);
    CHECK_INT(c2->sending, 4);
    CHECK_INT(w->msg_used, 1); /* c1's two pieces in one sendmsg, c2's one piece a plain send */
    CHECK_INT(w->iov_used, 2);
    /* queued while a send is in flight: waits for it */
    gw_conn_send_static(w, c1, "Host: a\r\n\r\n", 11);
    CHECK(c1->flags & GW_CONN_DIRTY);
    gw_conn_flush_all(w);
    CHECK_INT(c1->inflight, 1);
    CHECK_INT(c1->sending, 16);

    LOOP_UNTIL(w, r1.sent == 1 && r2.sent == 1);
    CHECK_INT(c1->out.bytes, 0);
    CHECK_INT(c1->out.count, 0);
    CHECK_INT(c1->inflight, 0);
    CHECK_INT(c1->sending, 0);
    CHECK(!(c1->flags & GW_CONN_SENDING));
    CHECK_INT(drain_peer(p1, buf, sizeof(buf)), 27);
    CHECK_STR(buf, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK_INT(drain_peer(p2, buf, sizeof(buf)), 4);
    CHECK_STR(buf, "pong");

    /* a slice of a received buffer: one reference per segment, dropped when sent */
    {
        uint32_t bid;

        r1.hold = 1;
        gw_conn_recv_start(w, c1);
        CHECK_INT(write(p1, "body-bytes", 10), 10);
        LOOP_UNTIL(w, r1.nheld == 1);
        gw_conn_recv_stop(w, c1);
        r1.hold = 0;
        bid = r1.held[0];
        CHECK_INT(r1.got_len, 10);
        CHECK_INT(w->bufs.held, 1);
        gw_conn_send_buf(w, c1, gw_buf_data(&w->bufs, bid), 4, bid);
        gw_conn_send_buf(w, c2, gw_buf_data(&w->bufs, bid) + 5, 5, bid);
        CHECK_INT(w->bufs.refs[bid], 3);
        gw_buf_unref(&w->bufs, bid); /* the receiver's own reference */
        CHECK_INT(w->bufs.refs[bid], 2);
        CHECK_INT(w->bufs.held, 1);
        LOOP_UNTIL(w, r1.sent == 2 && r2.sent == 2);
        CHECK_INT(w->bufs.refs[bid], 0);
        CHECK_INT(w->bufs.held, 0);
        settle(w);
        CHECK_INT(c1->inflight, 0);
    }
    CHECK_INT(drain_peer(p1, buf, sizeof(buf)), 4);
    CHECK_STR(buf, "body");
    CHECK_INT(drain_peer(p2, buf, sizeof(buf)), 5);
    CHECK_STR(buf, "bytes");

    /* more pieces than one sendmsg takes: several sends, in order */
    {
        static char pieces[200][4];
        static char want[800];
        int rounds = 0;

        for (int i = 0; i < 200; i++) {
            snprintf(pieces[i], sizeof(pieces[i]), "%03d", i);
            memcpy(want + i * 3, pieces[i], 3);
            gw_conn_send_static(w, c1, pieces[i], 3);
        }
        CHECK_INT(c1->out.count, 200);
        CHECK_INT(c1->out.bytes, 600);
        gw_conn_flush_all(w);
        CHECK_INT(c1->sending, GW_SEND_MAX_IOV * 3);
        while (r1.sent < 3 && rounds++ < 300)
            loop_once(w, 10);
        CHECK_INT(r1.sent, 3);
        CHECK_INT(c1->out.count, 0);
        {
            static char got[800];

            CHECK_INT(drain_peer(p1, got, sizeof(got)), 600);
            CHECK(memcmp(got, want, 600) == 0);
        }
    }

    /* a send to a closed peer fails: queue dropped, the owner told */
    close(p2);
    gw_conn_send_heap(w, c2, heap_copy("lost"), NULL, 0);
    block = heap_copy("lost");
    gw_conn_send_heap(w, c2, block, block, 4);
    LOOP_UNTIL(w, r2.send_errs == 1);
    CHECK_INT(r2.send_err, -EPIPE);
    CHECK_INT(c2->out.count, 0);
    LOOP_UNTIL(w, c2->flags == 0); /* on_send_error closed it; the slot came back */

    gw_conn_close(w, c1);
    LOOP_UNTIL(w, w->active == 0);
    close(p1);
    ring_worker_free(w);
}

static void test_recv(int multishot)
{
    gw_worker_t *w = ring_worker(8, multishot);
    static rec_t r;
    int peer, fd;
    gw_conn_t *c;

    memset(&r, 0, sizeof(r));
    c = pair_conn(w, &peer, &r);
    fd = c->fd;
    gw_conn_recv_start(w, c);
    CHECK(c->flags & GW_CONN_RECV_WANTED);
    CHECK(c->flags & GW_CONN_RECV_ARMED);
    CHECK_INT(c->inflight, 1);
    gw_conn_recv_start(w, c); /* already armed: not twice */
    CHECK_INT(c->inflight, 1);

    CHECK_INT(write(peer, "ping", 4), 4);
    LOOP_UNTIL(w, r.got_len == 4);
    CHECK(memcmp(r.got, "ping", 4) == 0);
    CHECK_INT(w->bufs.held, 0);
    CHECK(c->flags & GW_CONN_RECV_ARMED); /* still (multishot) or again (single-shot) */
    CHECK_INT(c->inflight, 1);
    CHECK_INT(write(peer, "pong", 4), 4);
    LOOP_UNTIL(w, r.got_len == 8);
    CHECK(memcmp(r.got, "pingpong", 8) == 0);

    /* stop: a cancel goes out, then nothing is armed */
    gw_conn_recv_stop(w, c);
    CHECK(!(c->flags & GW_CONN_RECV_WANTED));
    CHECK(c->flags & GW_CONN_RECV_CANCELING);
    CHECK_INT(c->inflight, 2);
    gw_conn_recv_stop(w, c); /* twice: one cancel */
    CHECK_INT(c->inflight, 2);
    LOOP_UNTIL(w, c->inflight == 0);
    CHECK(!(c->flags & (GW_CONN_RECV_ARMED | GW_CONN_RECV_CANCELING)));
    CHECK_INT(write(peer, "held", 4), 4);
    settle(w);
    CHECK_INT(r.got_len, 8); /* not read while stopped */

    /* stop then start again before the cancel completes: reading resumes */
    gw_conn_recv_start(w, c);
    gw_conn_recv_stop(w, c);
    gw_conn_recv_start(w, c);
    CHECK(c->flags & GW_CONN_RECV_WANTED);
    LOOP_UNTIL(w, r.got_len == 12);
    CHECK(memcmp(r.got + 8, "held", 4) == 0);
    settle(w);
    CHECK(c->flags & GW_CONN_RECV_ARMED);
    CHECK_INT(c->inflight, 1);

    /* the peer shuts its side: on_eof(0), reading ends */
    shutdown(peer, SHUT_WR);
    LOOP_UNTIL(w, r.eofs == 1);
    CHECK_INT(r.eof_err, 0);
    CHECK(c->flags & GW_CONN_READ_EOF);
    CHECK(!(c->flags & GW_CONN_RECV_WANTED));
    settle(w);
    CHECK_INT(c->inflight, 0);
    CHECK_INT(r.eofs, 1);
    gw_conn_recv_start(w, c); /* after EOF: refused */
    CHECK_INT(c->inflight, 0);
    CHECK(!(c->flags & GW_CONN_RECV_ARMED));

    gw_conn_close(w, c);
    CHECK_INT(c->inflight, 1); /* just the close: nothing to cancel */
    LOOP_UNTIL(w, c->flags == 0);
    CHECK(!fd_open(fd));
    CHECK_INT(w->active, 0);
    close(peer);
    ring_worker_free(w);
}

static void test_close(int multishot)
{
    gw_worker_t *w = ring_worker(8, multishot);
    static rec_t r;
    int peer, fd;
    gw_conn_t *c, *c2;
    uint32_t gen;
    char buf[64];

    memset(&r, 0, sizeof(r));
    c = pair_conn(w, &peer, &r);
    fd = c->fd;
    gen = c->gen;
    gw_conn_recv_start(w, c);
    gw_conn_timer(w, c, 5000);
    CHECK_INT(w->timers.count, 1);
    gw_conn_send_heap(w, c, heap_copy("never sent"), NULL, 0);
    {
        char *b = heap_copy("never sent");

        gw_conn_send_heap(w, c, b, b, 10);
    }
    CHECK_INT(c->out.count, 1);
    /* submit the recv but not the output */
    io_uring_submit(&w->ring);

    gw_conn_close(w, c);
    CHECK(c->flags & GW_CONN_CLOSING);
    CHECK(gw_conn_is_closing(c));
    CHECK_INT(c->out.count, 0); /* unsent output dropped, its block freed */
    CHECK_INT(c->out.bytes, 0);
    CHECK_INT(w->timers.count, 0);
    CHECK(!(c->flags & GW_CONN_RECV_WANTED));
    CHECK_INT(c->inflight, 3); /* the recv, a cancel, the close */
    gw_conn_close(w, c);       /* twice: harmless */
    CHECK_INT(c->inflight, 3);
    /* output for a closing connection is dropped (and freed) at once */
    gw_conn_send_heap(w, c, heap_copy("late"), "late", 4);
    gw_conn_send_static(w, c, "late", 4);
    CHECK_INT(c->out.count, 0);
    gw_conn_finish(w, c, 0);
    gw_conn_finish(w, c, 1);
    CHECK_INT(c->inflight, 3);

    /* still DIRTY from the send: the flush frees it once the kernel is done */
    LOOP_UNTIL(w, c->flags == 0);
    CHECK_INT(c->inflight, 0);
    CHECK_INT(w->active, 0);
    CHECK(!fd_open(fd));
    CHECK_INT(drain_peer(peer, buf, sizeof(buf)), 0);
    CHECK_INT(r.eofs + r.sent + r.send_errs + r.data_calls, 0); /* the owner heard nothing */
    close(peer);

    /* the slot comes back with the next generation */
    c2 = pair_conn(w, &peer, &r);
    CHECK(c2 == c);
    CHECK_INT(c2->gen, gen + 1);

    /* closing while a send is in the kernel: the segments live until it completes */
    {
        size_t big = 4u << 20;
        char *block = malloc(big);

        memset(block, 'z', big);
        gw_conn_send_heap(w, c2, block, block, (uint32_t)big);
        gw_conn_flush_all(w);
        CHECK(c2->flags & GW_CONN_SENDING);
        io_uring_submit(&w->ring);
        /* a short send is followed by the next at the next flush: get one in flight */
        for (int i = 0; i < 100 && !(c2->flags & GW_CONN_SENDING); i++) {
            loop_once(w, 10);
            gw_conn_flush_all(w);
            io_uring_submit(&w->ring);
        }
        gw_conn_close(w, c2);
        CHECK(c2->flags & GW_CONN_SENDING);
        CHECK_INT(c2->out.count, 1);   /* kept: the kernel may still read it */
        LOOP_UNTIL(w, c2->flags == 0); /* the send ended (cancelled or short), block freed (ASan) */
        CHECK_INT(w->active, 0);
    }
    close(peer);
    ring_worker_free(w);
}

static void test_finish(int multishot)
{
    gw_worker_t *w = ring_worker(8, multishot);
    static rec_t r;
    int peer;
    gw_conn_t *c;
    char buf[128];

    /* finish with output queued: close once it is sent */
    memset(&r, 0, sizeof(r));
    c = pair_conn(w, &peer, &r);
    gw_conn_send_static(w, c, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    gw_conn_finish(w, c, 0);
    CHECK(c->flags & GW_CONN_CLOSE_ON_DRAIN);
    CHECK(!(c->flags & GW_CONN_CLOSING));
    CHECK(gw_conn_is_closing(c));
    LOOP_UNTIL(w, c->flags == 0);
    CHECK_INT(r.sent, 0); /* drained into the close, not on_sent */
    CHECK_INT(drain_peer(peer, buf, sizeof(buf)), 28);
    CHECK_INT(read(peer, buf, sizeof(buf)), 0); /* then EOF */
    close(peer);

    /* lingering: write side shut, input discarded until the peer closes */
    c = pair_conn(w, &peer, &r);
    gw_conn_send_static(w, c, "bye", 3);
    gw_conn_finish(w, c, 1);
    CHECK(c->flags & GW_CONN_LINGER_ON_DRAIN);
    LOOP_UNTIL(w, c->flags & GW_CONN_LINGER);
    CHECK(gw_timer_armed(&c->timer));
    CHECK(c->flags & GW_CONN_RECV_ARMED);
    {
        size_t got = 0;

        LOOP_UNTIL(w, (got += drain_peer(peer, buf + got, sizeof(buf) - got)) >= 3);
        CHECK_INT(got, 3);
        CHECK(memcmp(buf, "bye", 3) == 0);
    }
    LOOP_UNTIL(w, read(peer, buf, sizeof(buf)) == 0); /* then the write side is shut */
    CHECK_INT(write(peer, "late request data", 17), 17);
    settle(w);
    CHECK_INT(r.data_calls, 0); /* discarded */
    CHECK_INT(w->bufs.held, 0);
    CHECK(c->flags & GW_CONN_USED);
    close(peer);
    LOOP_UNTIL(w, c->flags == 0);
    CHECK_INT(r.eofs, 0);

    /* lingering that times out */
    c = pair_conn(w, &peer, &r);
    gw_conn_finish(w, c, 1);
    CHECK(c->flags & GW_CONN_LINGER);
    CHECK(gw_timer_armed(&c->timer));
    settle(w);
    CHECK(c->flags & GW_CONN_USED);
    w->now += 5000;
    gw_wheel_run(&w->timers, w->now);
    CHECK(c->flags & GW_CONN_CLOSING);
    LOOP_UNTIL(w, c->flags == 0);
    CHECK_INT(r.timeouts, 0); /* the owner is not told */
    close(peer);
    ring_worker_free(w);
}

static void test_timer(void)
{
    gw_worker_t *w = ring_worker(4, 1);
    static rec_t r;
    int peer;
    gw_conn_t *c;

    memset(&r, 0, sizeof(r));
    c = pair_conn(w, &peer, &r);
    gw_conn_timer(w, c, 60);
    CHECK(gw_timer_armed(&c->timer));
    gw_wheel_run(&w->timers, w->now + 59);
    CHECK_INT(r.timeouts, 0);
    gw_wheel_run(&w->timers, w->now + 60);
    CHECK_INT(r.timeouts, 1);
    w->now += 60;
    gw_conn_timer(w, c, 100);
    gw_conn_timer(w, c, 200); /* pushed back */
    gw_wheel_run(&w->timers, w->now + 150);
    CHECK_INT(r.timeouts, 1);
    gw_conn_timer_off(w, c);
    CHECK(!gw_timer_armed(&c->timer));
    gw_wheel_run(&w->timers, w->now + 1000);
    CHECK_INT(r.timeouts, 1);
    w->now += 1000;
    gw_conn_timer(w, c, 10);
    gw_conn_close(w, c);
    CHECK_INT(w->timers.count, 0);
    gw_wheel_run(&w->timers, w->now + 100);
    CHECK_INT(r.timeouts, 1);
    LOOP_UNTIL(w, c->flags == 0);
    close(peer);
    ring_worker_free(w);
}

/* Fill data with a letter pattern from `first` and write as much of it to the
 * peer as its socket takes without blocking. Returns the bytes written. */
static size_t fill_peer(int peer, char *data, size_t size, char first)
{
    size_t written = 0;

    for (size_t i = 0; i < size; i++)
        data[i] = (char)(first + i % 26);
    while (written < size) {
        ssize_t k = write(peer, data + written, size - written);

        if (k <= 0)
            break;
        written += (size_t)k;
    }
    return written;
}

/* Every buffer held by the owner: the recv ends with ENOBUFS, the connection
 * waits on the starved list and is re-armed once enough buffers come back. */
static void test_starved(int multishot)
{
    gw_worker_t *w = ring_worker(4, multishot);
    static rec_t r;
    static char data[NBUFS * BUFSZ * 3];
    int peer;
    gw_conn_t *c;
    size_t written;

    memset(&r, 0, sizeof(r));
    r.hold = 1;
    c = pair_conn(w, &peer, &r);
    gw_conn_recv_start(w, c);
    written = fill_peer(peer, data, sizeof(data), 'a');
    CHECK(written > NBUFS * BUFSZ);
    LOOP_UNTIL(w, c->flags & GW_CONN_STARVED);
    CHECK_INT(r.starved, 1); /* the owner was told */
    CHECK_INT(w->bufs.held, NBUFS);
    CHECK_INT(r.nheld, NBUFS);
    CHECK_INT(w->nstarved, 1);
    CHECK(!(c->flags & GW_CONN_RECV_ARMED));
    CHECK_INT(c->inflight, 0);
    /* nothing free: stays starved */
    gw_conn_rearm_starved(w);
    CHECK_INT(w->nstarved, 1);
    settle(w);
    CHECK(c->flags & GW_CONN_STARVED);
    /* one buffer back (an eighth of the ring): re-armed, reading goes on */
    r.hold = 0;
    gw_buf_unref(&w->bufs, r.held[--r.nheld]);
    gw_conn_rearm_starved(w);
    CHECK_INT(w->nstarved, 0);
    CHECK(!(c->flags & GW_CONN_STARVED));
    CHECK(c->flags & GW_CONN_RECV_ARMED);
    while (r.nheld)
        gw_buf_unref(&w->bufs, r.held[--r.nheld]);
    LOOP_UNTIL(w, r.got_len == written);
    CHECK(memcmp(r.got, data, written) == 0);

    /* starved and then closed: the slot waits until the starved list lets go */
    settle(w); /* every buffer back in the kernel's hands */
    CHECK_INT(w->bufs.held, 0);
    CHECK_INT(w->bufs.pending, 0);
    r.hold = 1;
    CHECK_INT(write(peer, data, NBUFS * BUFSZ + 10), NBUFS * BUFSZ + 10);
    LOOP_UNTIL(w, c->flags & GW_CONN_STARVED);
    CHECK_INT(w->bufs.held, NBUFS);
    gw_conn_close(w, c);
    settle(w);
    CHECK_INT(c->inflight, 0);
    CHECK(c->flags & GW_CONN_USED); /* still listed as starved */
    CHECK_INT(w->active, 1);
    while (r.nheld)
        gw_buf_unref(&w->bufs, r.held[--r.nheld]);
    gw_conn_rearm_starved(w);
    CHECK_INT(c->flags, 0);
    CHECK_INT(w->active, 0);
    close(peer);
    ring_worker_free(w);
}

/* An owner told of the starvation stops reading: buffers coming back do not
 * re-arm it; it reads again when it says so, and nothing is lost. */
static void test_starved_owner_stops(int multishot)
{
    gw_worker_t *w = ring_worker(4, multishot);
    static rec_t r;
    static char data[NBUFS * BUFSZ * 2];
    int peer;
    gw_conn_t *c;
    size_t written;

    memset(&r, 0, sizeof(r));
    r.hold = 1;
    r.stop_on_starved = 1;
    c = pair_conn(w, &peer, &r);
    gw_conn_recv_start(w, c);
    written = fill_peer(peer, data, sizeof(data), 'A');
    LOOP_UNTIL(w, r.starved == 1);
    CHECK(!(c->flags & GW_CONN_RECV_WANTED));
    /* every buffer back: the starved list lets go of it, no recv is armed */
    r.hold = 0;
    while (r.nheld)
        gw_buf_unref(&w->bufs, r.held[--r.nheld]);
    settle(w);
    CHECK_INT(w->nstarved, 0);
    CHECK(!(c->flags & (GW_CONN_STARVED | GW_CONN_RECV_ARMED)));
    CHECK(r.got_len < written);
    /* the owner reads again: the rest arrives */
    gw_conn_recv_start(w, c);
    CHECK(c->flags & GW_CONN_RECV_ARMED);
    LOOP_UNTIL(w, r.got_len == written);
    CHECK(memcmp(r.got, data, written) == 0);
    CHECK_INT(r.starved, 1);
    gw_conn_close(w, c);
    close(peer);
    ring_worker_free(w);
}

static void test_connect(void)
{
    gw_worker_t *w = ring_worker(2, 1);
    static rec_t r1, r2;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sin);
    gw_addr_t a;
    gw_conn_t *c;
    int err = 0, peer;
    char buf[16];

    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    CHECK_INT(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    CHECK_INT(listen(lfd, 4), 0);
    getsockname(lfd, (struct sockaddr *)&sin, &slen);
    memset(&a, 0, sizeof(a));
    memcpy(&a.ss, &sin, sizeof(sin));
    a.len = sizeof(sin);

    c = gw_conn_connect(w, NULL, &a, &ops, &r1, &err);
    CHECK(c != NULL);
    if (c == NULL)
        goto out;
    CHECK(c->flags & GW_CONN_CONNECTING);
    CHECK_INT(c->inflight, 1);
    /* output queued while connecting waits for the connection */
    gw_conn_send_static(w, c, "hello", 5);
    gw_conn_flush_all(w);
    CHECK(!(c->flags & GW_CONN_SENDING));
    LOOP_UNTIL(w, r1.connects == 1);
    CHECK_INT(r1.connect_res, 0);
    CHECK(!(c->flags & GW_CONN_CONNECTING));
    LOOP_UNTIL(w, r1.sent == 1);
    peer = accept(lfd, NULL, NULL);
    CHECK(peer >= 0);
    CHECK_INT(read(peer, buf, sizeof(buf)), 5);
    close(peer);

    /* the table full: connect refuses with -EMFILE, no fd leaks */
    CHECK(gw_conn_connect(w, NULL, &a, &ops, &r2, &err) != NULL);
    CHECK(gw_conn_connect(w, NULL, &a, &ops, &r2, &err) == NULL);
    CHECK_INT(err, -EMFILE);
    settle(w);
    for (uint32_t i = 0; i < 2; i++)
        gw_conn_close(w, &w->conns[i]);
    LOOP_UNTIL(w, w->active == 0);

    /* refused: on_connect hears the error */
    close(lfd);
    lfd = -1;
    memset(&r1, 0, sizeof(r1));
    c = gw_conn_connect(w, NULL, &a, &ops, &r1, &err);
    CHECK(c != NULL);
    LOOP_UNTIL(w, r1.connects == 1);
    CHECK_INT(r1.connect_res, -ECONNREFUSED);
    gw_conn_close(w, c);
    LOOP_UNTIL(w, w->active == 0);
out:
    if (lfd >= 0)
        close(lfd);
    ring_worker_free(w);
}

int main(void)
{
    struct io_uring probe_ring;
    struct io_uring_probe *probe;
    int ret, multishot = 0;
    gw_bufring_t b;

    RUN(test_alloc_in_order);
    RUN(test_free_and_reuse);

    ret = io_uring_queue_init(8, &probe_ring, 0);
    if (ret < 0) {
        fprintf(stderr, "SKIP connection I/O tests: io_uring_queue_init failed (%d: %s); no io_uring here\n", -ret,
                strerror(-ret));
        return gw_test_done() ? 1 : 77;
    }
    ret = gw_bufring_init(&b, &probe_ring, 0, NBUFS, BUFSZ);
    if (ret < 0) {
        fprintf(stderr, "SKIP connection I/O tests: provided buffer ring unavailable (%d: %s), needs Linux 5.19\n",
                -ret, strerror(-ret));
        io_uring_queue_exit(&probe_ring);
        return gw_test_done() ? 1 : 77;
    }
    gw_bufring_free(&b, &probe_ring);
    /* as core/ring.c: multishot recv came with SEND_ZC (6.0) */
    probe = io_uring_get_probe_ring(&probe_ring);
    if (probe) {
        multishot = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
        io_uring_free_probe(probe);
    }
    io_uring_queue_exit(&probe_ring);

    RUN(test_timer);
    RUN(test_connect);
    for (int ms = multishot; ms >= 0; ms--) {
        fprintf(stderr, "-- %s recv\n", ms ? "multishot" : "single-shot");
        RUN_MODE(test_send_queue, ms);
        RUN_MODE(test_recv, ms);
        RUN_MODE(test_close, ms);
        RUN_MODE(test_finish, ms);
        RUN_MODE(test_starved, ms);
        RUN_MODE(test_starved_owner_stops, ms);
    }
    return gw_test_done();
}
