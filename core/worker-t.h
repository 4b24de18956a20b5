/* Types of a worker: one thread, one ring, everything it touches its own. */
#ifndef GW_WORKER_T_H
#define GW_WORKER_T_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "buf-t.h"
#include "conn-t.h"
#include "cycle-t.h"
#include "stats.h"
#include "timer-t.h"

/* What the ring turned out to support (probed at start, see ring.c). */
enum {
    GW_RING_DEFER_TASKRUN = 1u << 0,
    GW_RING_SINGLE_ISSUER = 1u << 1,
    GW_RING_COOP_TASKRUN = 1u << 2,
    GW_RING_REG_RING_FD = 1u << 3,
    GW_RING_RECV_MULTISHOT = 1u << 4,
    GW_RING_MIN_TIMEOUT = 1u << 5, /* waits can take a minimum time (6.12) */
    GW_RING_SOCKET_CMD = 1u << 6,  /* sockets and setsockopt through the ring (5.19 + 6.7) */
};

/*
 * Accepts in flight per listener. Single-shot accepts, each with its own
 * address slot, rather than one multishot accept: the peer's address comes
 * with the completion (a multishot accept has one address buffer for all its
 * completions), so $remote_addr, ip_hash and X-Forwarded-For cost no
 * getpeername() syscall. Re-arming is an SQE in the next batch, not a syscall.
 */
#define GW_ACCEPT_DEPTH 16

typedef struct gw_accept_slot {
    struct sockaddr_storage ss;
    socklen_t len;
    uint8_t armed;
} gw_accept_slot_t;

typedef struct gw_wcycle gw_wcycle_t;

typedef struct gw_listener {
    int fd;
    const gw_listen_t *conf;
    gw_wcycle_t *wc;    /* the configuration it was opened under */
    gw_timer_t backoff; /* re-arms accepts after running out of descriptors */
    gw_accept_slot_t slots[GW_ACCEPT_DEPTH];
} gw_listener_t;

/*
 * A worker's view of one configuration (a cycle): its listeners and the
 * modules' per-worker state for it (upstream runtimes, pools). After a
 * reload the new view takes new connections while the old one lives on
 * until the last connection opened under it is gone (nginx's old workers,
 * inside one thread).
 */
struct gw_wcycle {
    const gw_cycle_t *cycle;
    uint32_t gen;      /* low 24 bits go in its accepts' user_data */
    uint32_t conns;    /* connections opened under it, still allocated */
    uint32_t accepts;  /* accepts of its listeners still in the kernel */
    gw_listener_t *listeners;
    uint32_t nlisteners;
    void *http;        /* the HTTP module's state for this configuration */
    void *balancer;    /* per-upstream runtime (balancer/) */
    gw_wcycle_t *next; /* older views still draining */
};

/* Commands from the main thread, posted in `cmd` and signalled through the eventfd. */
enum { GW_CMD_NONE = 0, GW_CMD_STOP_GRACEFUL = 1, GW_CMD_STOP_FAST = 2 };

#define GW_SCRATCH_IOVS 4096
#define GW_SCRATCH_MSGS 1024
#define GW_SEND_MAX_IOV 64

typedef struct gw_worker_stats {
    uint64_t accepted;
    uint64_t loops;    /* ring waits */
    uint64_t cqes;
    uint64_t tunnels;  /* upgraded connections open now (http/tunnel.c) */
} gw_worker_stats_t;

struct gw_worker {
    int id;  /* 1-based, shown in logs as pid#id */
    int cpu; /* pinned to, or -1 */
    pthread_t thread;
    const gw_cycle_t *cycle; /* the configuration the worker started with (limits fixed for its life) */
    gw_wcycle_t *cur;        /* the configuration new connections get */
    gw_wcycle_t *old;        /* previous ones, until drained */
    uint32_t wc_gen;

    struct io_uring ring;
    uint32_t ring_features; /* GW_RING_* */
    gw_bufring_t bufs;
    gw_seg_cache_t segs;

    gw_conn_t *conns;   /* table of `nconns` slots */
    uint32_t nconns;
    uint32_t used_hwm;  /* slots [0, used_hwm) have been handed out at least once */
    gw_conn_t *free;    /* recycled slots */
    uint32_t active;    /* allocated slots, including ones still closing */
    gw_conn_t *dirty;   /* connections with output to flush */
    uint32_t *starved;  /* slot indexes waiting for buffers */
    uint32_t nstarved, starved_cap;

    gw_wheel_t timers;
    uint64_t now;    /* ms, monotonic, refreshed once per loop iteration */
    uint64_t now_us; /* the same instant in µs */

    /* Per-submit scratch for sendmsg headers; FEAT_SUBMIT_STABLE means the
     * kernel has copied them once io_uring_enter returns. */
    struct iovec iov_scratch[GW_SCRATCH_IOVS];
    struct msghdr msg_scratch[GW_SCRATCH_MSGS];
    uint32_t iov_used, msg_used;

    uint32_t exchange_us; /* moving average of an exchange's duration, fed by the owner (gw_worker_exchange_done) */
    int wake_fd;   /* eventfd the main thread writes after setting cmd */
    int notify_fd; /* pipe to the main thread: setup result, loop end */
    uint64_t wake_buf;
    _Atomic int cmd;
    _Atomic(gw_cycle_t *) reload_to; /* set by the main thread: switch new connections to it */
    int stopping;                    /* 0, or GW_CMD_STOP_* being carried out */
    int exit_code;

    gw_worker_stats_t stats;
    gw_stats_t st; /* counters a scrape reads from another thread (stats.h) */
    struct gw_logbuf **logbufs; /* per file written through the ring (logbuf.h) */
    uint32_t nlogbufs;
};

#endif
