/*
 * The worker's io_uring: setup with the best flags the kernel offers, the
 * encoding of completions' user_data, and getting SQEs without ever failing.
 */
#ifndef GW_RING_H
#define GW_RING_H

#include <liburing.h>
#include <stdint.h>

#include "worker-t.h"

/* Operations, as encoded in user_data (STYLE.md 5). */
enum gw_op {
    GW_OP_NONE = 0,
    GW_OP_ACCEPT,  /* idx = listener */
    GW_OP_RECV,    /* idx = connection */
    GW_OP_SEND,
    GW_OP_CONNECT,
    GW_OP_CLOSE,
    GW_OP_CANCEL,
    GW_OP_SHUTDOWN,
    GW_OP_WAKE,    /* the main thread's eventfd */
    GW_OP_SOCKET,  /* a socket for gw_conn_connect */
    GW_OP_SOCKOPT, /* TCP_NODELAY on it */
    GW_OP_LOGWRITE, /* idx = the worker's log buffer (logbuf.c) */
};

/* user_data: op in bits 0-7, generation in 8-31, slot index in 32-63. */
static inline uint64_t gw_ud(enum gw_op op, uint32_t idx, uint32_t gen)
{
    return (uint64_t)op | ((uint64_t)(gen & 0xffffffu) << 8) | ((uint64_t)idx << 32);
}

static inline enum gw_op gw_ud_op(uint64_t ud)
{
    return (enum gw_op)(ud & 0xff);
}

static inline uint32_t gw_ud_gen(uint64_t ud)
{
    return (uint32_t)(ud >> 8) & 0xffffffu;
}

static inline uint32_t gw_ud_idx(uint64_t ud)
{
    return (uint32_t)(ud >> 32);
}

/*
 * Create w->ring (sq_entries, CQ twice as large) in the calling thread, the
 * buffer ring, and probe features into w->ring_features. Returns 0 or -errno;
 * `why` names the step that failed.
 */
int gw_ring_init(gw_worker_t *w, unsigned sq_entries, uint32_t nbufs, uint32_t buf_size, const char **why);
void gw_ring_exit(gw_worker_t *w);

/* The smallest GW_RING_BUFFERS taken: starved connections re-arm when an eighth is free, at least one buffer. */
#define GW_RING_BUFFERS_MIN 8

/*
 * The provided-buffer count: GW_RING_BUFFERS from the environment (a test
 * knob), else dflt. Returns the count, or -EINVAL with msg saying why the
 * value was refused.
 */
int gw_ring_env_buffers(uint32_t dflt, char *msg, size_t size);

/* An SQE, submitting what is queued first if the SQ is full. Never NULL. */
struct io_uring_sqe *gw_ring_sqe(gw_worker_t *w);

/*
 * Submit what is queued and wait for at least `wait_nr` completions, at most
 * `timeout_ms` (-1: no limit). With `min_wait_us` and a kernel that has
 * IORING_FEAT_MIN_TIMEOUT (6.12), the kernel waits up to min_wait_us for
 * wait_nr completions and then returns with whatever arrived (at least one):
 * under load that turns many small waits into one. One io_uring_enter.
 * Returns >= 0 or -errno (-ETIME on timeout).
 */
int gw_ring_submit_and_wait(gw_worker_t *w, unsigned wait_nr, int64_t timeout_ms, unsigned min_wait_us);

/* Fill sqe for setsockopt through the ring (6.7+: GW_RING_SOCKET_CMD). */
void gw_ring_prep_setsockopt(struct io_uring_sqe *sqe, int fd, int level, int optname, const void *optval,
                             uint32_t optlen);

/* Describe the features in use, for the startup log. */
void gw_ring_describe(const gw_worker_t *w, char *buf, size_t size);

#endif
