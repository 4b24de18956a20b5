/*
 * Buffered appends to files, written through the worker's ring: what the
 * access log needs so a request never waits on a disk. Each worker keeps one
 * buffer per file descriptor; a full buffer, its flush timer, or (without a
 * buffer size) the end of the loop iteration turns it into one
 * IORING_OP_WRITE on the O_APPEND descriptor. One write per file is in
 * flight at a time, so a worker's lines stay in order; lines arriving
 * meanwhile gather in a second buffer. Reopening (log.c's dup3) needs
 * nothing from here: the descriptor number stays.
 */
#ifndef GW_LOGBUF_H
#define GW_LOGBUF_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>

#include "timer-t.h"
#include "worker-t.h"

#define GW_LOGBUF_MAX (8u << 20) /* bytes waiting behind a slow write before lines are dropped */

typedef struct gw_logbuf {
    int fd;
    uint32_t idx;      /* in w->logbufs; the user_data of its writes */
    uint32_t size;     /* buffer= (0: written at the end of every loop iteration) */
    uint64_t flush_ms; /* flush= (0: only when full) */
    char *buf;         /* gathering */
    uint32_t len, cap;
    char *wbuf;        /* being written */
    uint32_t wlen, woff, wcap;
    uint8_t writing;   /* a write is in the kernel */
    uint8_t due;       /* write what is gathered as soon as possible */
    gw_timer_t timer;
} gw_logbuf_t;

/*
 * Append n bytes for fd, gathered up to `size` bytes (access_log's buffer=;
 * 0: written this loop iteration) or for flush_ms (flush=; 0: until full). Never blocks; drops the bytes (and
 * counts them in w->st.log_dropped) only when GW_LOGBUF_MAX are already
 * waiting or memory runs out.
 */
void gw_logbuf_append(gw_worker_t *w, int fd, const char *data, size_t n, uint32_t size, uint64_t flush_ms);

/* End of a loop iteration: start the writes that are due (all of them when `all`). */
void gw_logbuf_flush(gw_worker_t *w, int all);

/* A write completed. */
void gw_logbuf_handle_write(gw_worker_t *w, struct io_uring_cqe *cqe);

/* Nothing gathered and nothing in flight (a graceful stop waits for this). */
int gw_logbuf_idle(const gw_worker_t *w);

/* At exit, after the ring is gone: write what is left with write(2), free everything. */
void gw_logbuf_free_all(gw_worker_t *w);

#endif
