/*
 * Connections: a per-worker table of slots, and the I/O every owner needs —
 * a multishot recv into the buffer ring, an ordered output queue flushed once
 * per loop iteration (many queued pieces go out in one sendmsg), connect,
 * timeouts, and closing that waits for the kernel to let go of the slot.
 *
 * Return convention (STYLE.md 7): -errno on failure, >= 0 on success.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include "addr.h"
#include "buf.h"
#include "conn-t.h"
#include "worker-t.h"

/* Take a free slot for fd, under configuration wc. Returns NULL when the table is full (worker_connections). */
gw_conn_t *gw_conn_alloc(gw_worker_t *w, gw_wcycle_t *wc, int fd);

static inline gw_conn_t *gw_conn_at(gw_worker_t *w, uint32_t idx)
{
    return &w->conns[idx];
}

/* Start or stop reading. Stopping is a request: data already on its way is still delivered. */
void gw_conn_recv_start(gw_worker_t *w, gw_conn_t *c);
void gw_conn_recv_stop(gw_worker_t *w, gw_conn_t *c);

/* Queue bytes. The _buf form forwards a slice of a received buffer, taking one reference. */
void gw_conn_send_buf(gw_worker_t *w, gw_conn_t *c, const char *data, uint32_t len, uint32_t bid);
/* Queue a malloc'ed block; it is freed once sent (or when the connection closes). */
void gw_conn_send_heap(gw_worker_t *w, gw_conn_t *c, void *block, const char *data, uint32_t len);
/* Queue bytes that outlive the connection (string literals). */
void gw_conn_send_static(gw_worker_t *w, gw_conn_t *c, const char *data, uint32_t len);

/* For a layer (c->layer): queue bytes for the wire itself, past `out` (a malloc'ed block, freed once sent). */
void gw_conn_send_wire(gw_worker_t *w, gw_conn_t *c, void *block, const char *data, uint32_t len);

/* For a layer: have encode called at the next flush (it waits for something the ring will report). */
void gw_conn_kick(gw_worker_t *w, gw_conn_t *c);

/*
 * Move the queued output of c into q (c's queue is left empty). Only when no
 * send is in flight (-EBUSY otherwise): used to hand a request body that
 * never left to another connection.
 */
int gw_conn_take_output(gw_worker_t *w, gw_conn_t *c, gw_segq_t *q);

/* Append every segment of q to c's output (q is left empty). */
void gw_conn_send_queue(gw_worker_t *w, gw_conn_t *c, gw_segq_t *q);

/*
 * Open a non-blocking TCP socket to addr and connect it through the ring.
 * The result arrives in ops->on_connect. Output queued meanwhile is sent once
 * connected. Returns the connection, or NULL with *err = -errno.
 */
gw_conn_t *gw_conn_connect(gw_worker_t *w, gw_wcycle_t *wc, const gw_addr_t *addr, const gw_conn_ops_t *ops,
                           void *data, int *err);

/* Arm (or re-arm) the connection's timer: ops->on_timeout in `ms` milliseconds. */
void gw_conn_timer(gw_worker_t *w, gw_conn_t *c, uint64_t ms);
void gw_conn_timer_off(gw_worker_t *w, gw_conn_t *c);

/* Close now: unsent output is dropped, the owner hears nothing more. */
void gw_conn_close(gw_worker_t *w, gw_conn_t *c);

/*
 * Close once everything queued is sent. With `linger`, shut the write side
 * first and read (discarding) until the peer closes or a few seconds pass, so
 * a final response is not destroyed by a reset when the peer was still
 * sending (nginx's lingering close). The owner hears nothing more.
 */
void gw_conn_finish(gw_worker_t *w, gw_conn_t *c, int linger);

/*
 * Shut the write side now (SHUT_WR): the peer reads EOF after what was
 * already sent; reading goes on. The caller waits until `out` is drained
 * (nothing queued, no send in flight) before calling it.
 */
void gw_conn_shutdown(gw_worker_t *w, gw_conn_t *c);

/* Output not sent yet: queued (plaintext or a layer's records) or in a send in flight. */
static inline int gw_conn_has_output(const gw_conn_t *c)
{
    return c->out.bytes || c->wire.bytes || (c->flags & GW_CONN_SENDING);
}

static inline int gw_conn_is_closing(const gw_conn_t *c)
{
    return (c->flags & (GW_CONN_CLOSING | GW_CONN_CLOSE_ON_DRAIN)) != 0;
}

/* Worker internals: completion handlers and the per-iteration flush. */
void gw_conn_handle_recv(gw_worker_t *w, gw_conn_t *c, struct io_uring_cqe *cqe);
void gw_conn_handle_send(gw_worker_t *w, gw_conn_t *c, int res);
void gw_conn_handle_connect(gw_worker_t *w, gw_conn_t *c, int res);
void gw_conn_handle_done(gw_worker_t *w, gw_conn_t *c); /* close/cancel/shutdown/sockopt completed */
void gw_conn_handle_socket(gw_worker_t *w, gw_conn_t *c, int res);

void gw_conn_flush_all(gw_worker_t *w);
void gw_conn_rearm_starved(gw_worker_t *w);
void gw_conn_maybe_free(gw_worker_t *w, gw_conn_t *c);

/* At worker exit, in its thread: let every connection's layer (TLS) free what it holds
 * while the thread's own caches still exist; the sockets go with the table. */
void gw_conn_release_layers(gw_worker_t *w);

#endif
