/*
 * Receive buffers (the provided-buffer ring) and output segments.
 *
 * A buffer handed to a connection by a recv completion carries one reference.
 * Whoever holds a reference releases it with gw_buf_unref; at zero the buffer
 * goes back to the kernel. Returns to the ring are batched: gw_bufring_commit
 * publishes them once per loop iteration.
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>

#include "buf-t.h"

struct io_uring;

/* Map nbufs (power of two) buffers of `size` bytes and register them as group bgid. Returns 0 or -errno. */
int gw_bufring_init(gw_bufring_t *b, struct io_uring *ring, uint16_t bgid, uint32_t nbufs, uint32_t size);
void gw_bufring_free(gw_bufring_t *b, struct io_uring *ring);

static inline char *gw_buf_data(const gw_bufring_t *b, uint32_t bid)
{
    return b->base + (size_t)bid * b->size;
}

/* A recv completion delivered buffer bid: it now has one holder. */
static inline void gw_buf_taken(gw_bufring_t *b, uint32_t bid)
{
    b->refs[bid] = 1;
    b->held++;
}

static inline void gw_buf_ref(gw_bufring_t *b, uint32_t bid)
{
    b->refs[bid]++;
}

void gw_buf_unref(gw_bufring_t *b, uint32_t bid);

/* A spare buffer (b->size bytes at gw_buf_data) with one reference, or -ENOBUFS. */
int gw_buf_spare(gw_bufring_t *b);

/* Publish buffers given back since the last call. Returns how many. */
uint32_t gw_bufring_commit(gw_bufring_t *b);

/* Segments come from a per-worker free list (gw_seg_cache_t). */
gw_seg_t *gw_seg_alloc(gw_seg_cache_t *sc);
/* Release what the segment points at (buffer reference or heap block) and recycle it. */
void gw_seg_release(gw_seg_cache_t *sc, gw_bufring_t *b, gw_seg_t *s);
void gw_seg_cache_free(gw_seg_cache_t *sc);

static inline void gw_segq_init(gw_segq_t *q)
{
    q->head = NULL;
    q->tailp = &q->head;
    q->bytes = 0;
    q->count = 0;
}

static inline void gw_segq_push(gw_segq_t *q, gw_seg_t *s)
{
    s->next = NULL;
    *q->tailp = s;
    q->tailp = &s->next;
    q->bytes += s->len;
    q->count++;
}

/* Release every segment of q. */
void gw_segq_clear(gw_segq_t *q, gw_seg_cache_t *sc, gw_bufring_t *b);

/*
 * Copy every piece of q that points into a received buffer (ring or spare)
 * into a heap block of its own (GW_SEG_HEAP) and drop its buffer reference.
 * For bytes that wait on something that may itself need a receive: held in
 * their buffers, enough of them would leave no buffer for the very receives
 * they wait for. Returns 0, or -ENOMEM (the pieces not copied yet keep their
 * buffers; q stays whole either way).
 */
int gw_segq_unpin(gw_segq_t *q, gw_bufring_t *b);

/*
 * Drop the first `n` bytes of q (they were sent): whole segments are released,
 * a partly sent one is trimmed in place.
 */
void gw_segq_consume(gw_segq_t *q, gw_seg_cache_t *sc, gw_bufring_t *b, uint32_t n);

#endif
