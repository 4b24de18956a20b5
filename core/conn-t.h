/* Types of connections (see conn.h). */
#ifndef GW_CONN_T_H
#define GW_CONN_T_H

#include <stdint.h>

#include "addr.h"
#include "buf-t.h"
#include "timer-t.h"

typedef struct gw_worker gw_worker_t;
typedef struct gw_conn gw_conn_t;

/*
 * What the owner of a connection (the HTTP layer) is told. Every callback may
 * call gw_conn_close() on the connection; the slot stays valid until the
 * worker has seen the last completion of every operation on it.
 */
typedef struct gw_conn_ops {
    /* Bytes arrived in provided buffer `bid`. The callee owns one reference to
     * the buffer and must release it (gw_buf_unref) or hand it to a segment. */
    void (*on_data)(gw_worker_t *w, gw_conn_t *c, char *data, uint32_t len, uint32_t bid);
    /* The read side ended: 0 for an orderly EOF, -errno for an error. */
    void (*on_eof)(gw_worker_t *w, gw_conn_t *c, int err);
    /* A send completed; c->out.bytes says what is still queued. */
    void (*on_sent)(gw_worker_t *w, gw_conn_t *c);
    /* A send failed (-errno); the queued output was dropped. */
    void (*on_send_error)(gw_worker_t *w, gw_conn_t *c, int err);
    /* The connect started by gw_conn_connect finished: 0 or -errno. */
    void (*on_connect)(gw_worker_t *w, gw_conn_t *c, int res);
    /* The timer armed with gw_conn_timer fired. */
    void (*on_timeout)(gw_worker_t *w, gw_conn_t *c);
    /* The worker stops gracefully: finish what is in flight, then close. */
    void (*on_stop)(gw_worker_t *w, gw_conn_t *c);
    /* A reload made the connection's configuration old (c->wc != w->cur). */
    void (*on_retire)(gw_worker_t *w, gw_conn_t *c);
    /* Optional. Bytes arrived but the buffer ring is dry: reading waits until
     * an eighth of it is free again and then resumes by itself. The owner may
     * stop reading (gw_conn_recv_stop) to wait on its own terms instead. */
    void (*on_starved)(gw_worker_t *w, gw_conn_t *c);
} gw_conn_ops_t;

/*
 * A layer between the socket and the connection's owner (TLS, see tls/): it
 * sees received bytes before the owner and decides what of the owner's
 * output (c->out, plaintext) goes on the wire (c->wire). The owner does not
 * know it is there: it reads and writes plaintext through the usual calls.
 */
typedef struct gw_conn_layer {
    /* Received bytes, as ops->on_data (one buffer reference for the callee).
     * NULL: deliver them to the owner as they are. */
    void (*on_data)(gw_worker_t *w, gw_conn_t *c, char *data, uint32_t len, uint32_t bid);
    /* The read side ended (as ops->on_eof). NULL: tell the owner. */
    void (*on_eof)(gw_worker_t *w, gw_conn_t *c, int err);
    /* The connection may send: move what should go out from c->out to
     * c->wire (gw_conn_send_wire). Called only while no send is in flight.
     * NULL: c->out is sent as it is and c->wire is unused. */
    void (*encode)(gw_worker_t *w, gw_conn_t *c);
    /* The slot is being freed (nothing in flight): release layer_data. */
    void (*release)(gw_worker_t *w, gw_conn_t *c);
} gw_conn_layer_t;

enum {
    GW_CONN_RECV_WANTED = 1u << 0,    /* the owner wants input */
    GW_CONN_RECV_ARMED = 1u << 1,     /* a (multishot) recv is in the kernel */
    GW_CONN_RECV_CANCELING = 1u << 2, /* ... and a cancel for it is on its way */
    GW_CONN_SENDING = 1u << 3,        /* a send is in the kernel */
    GW_CONN_DIRTY = 1u << 4,          /* on the worker's flush list */
    GW_CONN_CONNECTING = 1u << 5,
    GW_CONN_CLOSING = 1u << 6,        /* close submitted; waiting for the last completions */
    GW_CONN_CLOSE_ON_DRAIN = 1u << 7, /* close once `out` is sent */
    GW_CONN_LINGER_ON_DRAIN = 1u << 8,
    GW_CONN_LINGER = 1u << 9,         /* write side shut, discarding input until EOF or timeout */
    GW_CONN_READ_EOF = 1u << 10,
    GW_CONN_STARVED = 1u << 11,       /* recv ended with ENOBUFS; re-armed when buffers return */
    GW_CONN_USED = 1u << 12,          /* slot allocated */
    GW_CONN_ACCEPTED = 1u << 13,      /* a client connection: counted in the worker's stats */
    GW_CONN_SHUT_WR = 1u << 14,       /* gw_conn_shutdown submitted (the close cancels it if still queued) */
};

/* A peer's address, compact (a sockaddr_storage is 128 bytes; this is 20). */
typedef struct gw_peer_addr {
    uint8_t family; /* AF_INET, AF_INET6, or 0 when unknown */
    uint8_t _pad;
    uint16_t port;  /* host order */
    uint8_t addr[16];
} gw_peer_addr_t;

struct gw_conn {
    int fd;
    uint32_t idx;      /* slot in the worker's table */
    uint32_t gen;      /* bumped at each allocation; stale completions are recognised by it */
    uint16_t flags;
    uint16_t inflight; /* ring operations submitted and not yet finally completed */
    uint32_t sending;  /* bytes at the head of `out` that the send in flight covers */
    uint32_t requests; /* requests carried so far (keepalive_requests) */
    uint64_t number;   /* serial number of an accepted connection, process-wide (nginx's $connection) */
    gw_segq_t out;     /* output, in order */
    uint64_t queued;   /* bytes ever queued for sending ($bytes_sent marks positions in it) */
    gw_timer_t timer;
    const gw_conn_ops_t *ops;
    void *data;            /* the owner's state */
    const void *ctx;       /* the owner's configuration (listener's, peer's) */
    struct gw_wcycle *wc;  /* the configuration it belongs to (see gw_wcycle_t) */
    const gw_addr_t *connect_to; /* while the socket for a connect is being made through the ring */
    gw_peer_addr_t peer;         /* the client's address (accepted connections) */
    gw_conn_t *next_dirty; /* flush list; free list when the slot is unused */
    const gw_conn_layer_t *layer; /* NULL, or the layer under the owner (TLS) */
    void *layer_data;
    gw_segq_t wire;               /* what the layer made of `out` (records), when it has an encode */
};

#endif
