/*
 * The tunnel of an upgraded connection (see tunnel.h). After the 101 no byte
 * is parsed: what one side sends is queued on the other as a slice of the
 * buffer it arrived in (no copy, as bodies are), and a side stops reading
 * while the other has more than GW_QUEUE_HIGH queued (or GW_QUEUE_HIGH_PIECES
 * pieces).
 *
 * Each direction (bytes read from side i, written to the other side) has a
 * state:
 *
 *   FLOWING  -> PAUSED     the other side's queue passed the high mark: stop reading i
 *   PAUSED   -> FLOWING    the other side drained: read i again
 *   FLOWING  -> DRAINING   i shut its write side (EOF): what is queued still goes out
 *   PAUSED   -> DRAINING   (EOF was already on its way when reading stopped)
 *   DRAINING -> SHUT       queue drained: shut the other side's write side
 *                          (a TLS side has no half-close: the tunnel ends instead,
 *                          with close_notify)
 *
 * The tunnel ends (both connections closed) when both directions are past
 * FLOWING/PAUSED and everything is sent, or at once on a reset, a send
 * error, or a timeout. Timeouts as nginx's: the tunnel closes when nothing
 * moved either way for proxy_read_timeout (the upstream connection's
 * timer), or when a side stalled with a full queue for its send timeout
 * (send_timeout towards the client, proxy_send_timeout towards the
 * upstream; the client connection's timer).
 */
#include "tunnel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/conn.h"
#include "core/gw.h"
#include "core/log.h"
#include "core/worker.h"
#include "proxy.h"
#include "response.h"

enum { SIDE_CLIENT = 0, SIDE_UP = 1 };

typedef enum gw_tunnel_dir {
    DIR_FLOWING,
    DIR_PAUSED,
    DIR_DRAINING,
    DIR_SHUT,
} gw_tunnel_dir_t;

typedef struct gw_tunnel {
    gw_conn_t *c[2];          /* SIDE_CLIENT, SIDE_UP */
    /* The exchange that asked for the upgrade, ended when the tunnel ends, as
     * nginx finalizes an upgraded request only then: the access log gets its
     * 101 with the tunnel's bytes and duration, the balancer counts the peer
     * busy (least_conn) until then. Its client and upstream are no longer its. */
    gw_http_req_t *req;
    uint64_t active;          /* w->now when something last moved, either way */
    uint64_t read_timeout;    /* proxy_read_timeout: idle limit */
    uint64_t send_timeout[2]; /* stall limit writing to each side: send_timeout, proxy_send_timeout */
    uint8_t dir[2];           /* gw_tunnel_dir_t of the bytes read from side i */
} gw_tunnel_t;

static const gw_conn_ops_t tunnel_ops;

static int side_of(const gw_tunnel_t *t, const gw_conn_t *c)
{
    return c == t->c[SIDE_UP];
}

/* Everything queued went out: plaintext (out) and, under TLS, its records (wire). */
static int drained(const gw_conn_t *c)
{
    return c->out.bytes == 0 && c->wire.bytes == 0 && !(c->flags & GW_CONN_SENDING);
}

static void log_end(const gw_tunnel_t *t, const char *what, int err)
{
    if (!gw_log_enabled(GW_LOG_ERR))
        return;
    gw_log(GW_LOG_ERR, "%s (%d: %s) while proxying upgraded connection, upstream: \"%s\"", what, err,
           strerror(err), t->req->peer ? t->req->peer->name : "-");
}

/*
 * Close both connections and free the tunnel. `orderly`: the tunnel ran its
 * course, so a TLS client gets its close_notify (gw_conn_finish); otherwise
 * (an error, a timeout) both are closed at once.
 */
static void end(gw_worker_t *w, gw_tunnel_t *t, int orderly)
{
    gw_exchange_free(w, t->req); /* logged now, with what the tunnel carried */
    w->stats.tunnels--;
    for (int i = 0; i < 2; i++) {
        gw_conn_t *c = t->c[i];

        c->data = NULL;
        gw_conn_timer_off(w, c);
        if (orderly) {
            gw_conn_recv_stop(w, c);
            gw_conn_finish(w, c, 0);
        } else {
            gw_conn_close(w, c);
        }
    }
    free(t);
}

/*
 * Finish the directions whose reader ended: once the other side's queue is
 * sent, shut its write side; once both directions are done, end the tunnel.
 * Returns GW_ERR when the tunnel ended.
 */
static int advance(gw_worker_t *w, gw_tunnel_t *t)
{
    if (t->dir[0] >= DIR_DRAINING && t->dir[1] >= DIR_DRAINING && drained(t->c[0]) && drained(t->c[1])) {
        end(w, t, 1);
        return GW_ERR;
    }
    for (int i = 0; i < 2; i++) {
        if (t->dir[i] == DIR_DRAINING && drained(t->c[!i])) {
            if (t->c[!i]->layer) {
                /* TLS has no half-close to offer (a raw shutdown would cut the
                 * session short of its close_notify): one side's end ends it
                 * all, as nginx does for every tunnel. */
                end(w, t, 1);
                return GW_ERR;
            }
            t->dir[i] = DIR_SHUT;
            gw_conn_shutdown(w, t->c[!i]);
        }
    }
    return 0;
}

/* Arm the stall timer (the client connection's) for the sides whose writing holds a reader back. */
static void stall_timer(gw_worker_t *w, gw_tunnel_t *t)
{
    uint64_t ms = UINT64_MAX;

    for (int i = 0; i < 2; i++)
        if (t->dir[i] == DIR_PAUSED && t->send_timeout[!i] < ms)
            ms = t->send_timeout[!i];
    if (ms == UINT64_MAX)
        gw_conn_timer_off(w, t->c[SIDE_CLIENT]);
    else
        gw_conn_timer(w, t->c[SIDE_CLIENT], ms);
}

static void pause_dir(gw_worker_t *w, gw_tunnel_t *t, int i)
{
    t->dir[i] = DIR_PAUSED;
    gw_conn_recv_stop(w, t->c[i]);
    stall_timer(w, t);
}

/* Stop reading side i while the other side's queue is above the high mark. */
static void maybe_pause(gw_worker_t *w, gw_tunnel_t *t, int i)
{
    if (t->dir[i] == DIR_FLOWING && gw_queue_high(&t->c[!i]->out))
        pause_dir(w, t, i);
}

/*
 * The buffer ring ran dry under side i. If the other side still has output
 * to take, that output holds some of the buffers: side i waits for it to
 * drain, as with a full queue, so that the stall timer (the other side's
 * send timeout) bounds a peer that stopped reading.
 */
static void tunnel_on_starved(gw_worker_t *w, gw_conn_t *c)
{
    gw_tunnel_t *t = c->data;
    int i;

    if (t == NULL)
        return;
    i = side_of(t, c);
    if (t->dir[i] == DIR_FLOWING && gw_conn_has_output(t->c[!i]))
        pause_dir(w, t, i);
}

static void tunnel_on_data(gw_worker_t *w, gw_conn_t *c, char *data, uint32_t len, uint32_t bid)
{
    gw_tunnel_t *t = c->data;
    int i;

    if (t == NULL) { /* the tunnel ended; the connection is finishing (a TLS close_notify) */
        gw_buf_unref(&w->bufs, bid);
        return;
    }
    i = side_of(t, c);
    t->active = w->now;
    gw_conn_send_buf(w, t->c[!i], data, len, bid);
    gw_buf_unref(&w->bufs, bid);
    maybe_pause(w, t, i);
}

/* Everything queued on c was sent: read its peer again, or finish a draining direction. */
static void tunnel_on_sent(gw_worker_t *w, gw_conn_t *c)
{
    gw_tunnel_t *t = c->data;
    int from;

    if (t == NULL)
        return;
    from = !side_of(t, c);
    t->active = w->now;
    if (t->dir[from] == DIR_PAUSED) {
        t->dir[from] = DIR_FLOWING;
        gw_conn_recv_start(w, t->c[from]);
        stall_timer(w, t);
    }
    advance(w, t);
}

static void tunnel_on_eof(gw_worker_t *w, gw_conn_t *c, int err)
{
    gw_tunnel_t *t = c->data;
    int i, was_paused;

    if (t == NULL) {
        gw_conn_close(w, c);
        return;
    }
    if (err < 0) {
        /* A reset (or another read error) either way closes both at once. */
        end(w, t, 0);
        return;
    }
    i = side_of(t, c);
    t->active = w->now;
    was_paused = t->dir[i] == DIR_PAUSED;
    t->dir[i] = DIR_DRAINING;
    if (was_paused)
        stall_timer(w, t);
    advance(w, t);
}

static void tunnel_on_send_error(gw_worker_t *w, gw_conn_t *c, int err)
{
    gw_tunnel_t *t = c->data;

    if (t == NULL)
        gw_conn_close(w, c);
    else
        end(w, t, 0);
}

static void tunnel_on_timeout(gw_worker_t *w, gw_conn_t *c)
{
    gw_tunnel_t *t = c->data;
    uint64_t idle;

    if (t == NULL) {
        gw_conn_close(w, c);
        return;
    }
    if (c == t->c[SIDE_CLIENT]) {
        /* The stall timer: a side did not take its queue for its send timeout. */
        log_end(t, t->dir[SIDE_UP] == DIR_PAUSED ? "client timed out" : "upstream timed out", ETIMEDOUT);
        end(w, t, 0);
        return;
    }
    /* The idle timer is not pushed back on every byte: it fires, and looks. */
    idle = w->now - t->active;
    if (idle < t->read_timeout) {
        gw_conn_timer(w, c, t->read_timeout - idle);
        return;
    }
    log_end(t, "upstream timed out", ETIMEDOUT);
    end(w, t, 0);
}

/* A graceful stop or a reload leaves tunnels open until they end by themselves, as nginx's old workers do. */
static void tunnel_on_stop(gw_worker_t *w, gw_conn_t *c)
{
}

static const gw_conn_ops_t tunnel_ops = {
    .on_data = tunnel_on_data,
    .on_eof = tunnel_on_eof,
    .on_sent = tunnel_on_sent,
    .on_send_error = tunnel_on_send_error,
    .on_timeout = tunnel_on_timeout,
    .on_stop = tunnel_on_stop,
    .on_starved = tunnel_on_starved,
};

void gw_tunnel_start(gw_worker_t *w, gw_http_req_t *req, const char *rest, uint32_t n, uint32_t bid)
{
    const gw_http_lconf_t *lc = gw_exchange_lconf(req);
    gw_conn_t *c = req->client, *up = req->up;
    gw_tunnel_t *t = calloc(1, sizeof(*t));
    uint32_t len = 0;
    char *head = t ? gw_response_client_head(req, &len) : NULL;

    if (head == NULL) {
        free(t);
        gw_exchange_log_upstream(req, "out of memory starting an upgraded connection", ENOMEM);
        gw_exchange_abort(w, req);
        return;
    }
    /* For the worker's batching the exchange is over at the 101 (a tunnel's
     * length says nothing about how long requests take). */
    gw_worker_exchange_done(w, req->start_us);
    t->c[SIDE_CLIENT] = c;
    t->c[SIDE_UP] = up;
    t->req = req;
    t->active = w->now;
    t->read_timeout = lc->proxy_read_timeout;
    t->send_timeout[SIDE_CLIENT] = lc->send_timeout;
    t->send_timeout[SIDE_UP] = lc->proxy_send_timeout;

    /* The 101 head, then what the upstream sent right behind it; and to the
     * upstream, what the client sent right behind its request (req->inq
     * holds it unparsed: the request was complete, its response pending). */
    gw_conn_send_heap(w, c, head, head, len);
    req->head_sent = 1;
    req->body_mark = c->queued; /* what follows counts as body ($body_bytes_sent), as in nginx */
    if (n)
        gw_conn_send_buf(w, c, rest, n, bid);
    gw_conn_send_queue(w, up, &req->inq);
    req->up = NULL;

    c->ops = up->ops = &tunnel_ops;
    c->data = up->data = t;
    w->stats.tunnels++;
    gw_conn_timer_off(w, c);
    gw_conn_timer(w, up, t->read_timeout);
    for (int i = 0; i < 2; i++) {
        /* Reading may have been stopped for backpressure, or ended (a client that half-closed after its request). */
        if (t->c[i]->flags & GW_CONN_READ_EOF)
            t->dir[i] = DIR_DRAINING;
        else
            gw_conn_recv_start(w, t->c[i]);
    }
    if (advance(w, t) < 0)
        return;
    maybe_pause(w, t, SIDE_CLIENT);
    maybe_pause(w, t, SIDE_UP);
}

void gw_tunnel_exit_worker(gw_worker_t *w, gw_wcycle_t *wc)
{
    for (uint32_t i = 0; i < w->used_hwm; i++) {
        gw_conn_t *c = &w->conns[i];
        gw_tunnel_t *t = c->data;

        if (!(c->flags & GW_CONN_USED) || c->wc != wc || c->ops != &tunnel_ops || t == NULL)
            continue;
        gw_exchange_free(w, t->req);
        t->c[SIDE_CLIENT]->data = NULL;
        t->c[SIDE_UP]->data = NULL;
        free(t);
    }
}
