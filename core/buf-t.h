/* Types of the buffer pool and output segments (see buf.h). */
#ifndef GW_BUF_T_H
#define GW_BUF_T_H

#include <stdint.h>

struct io_uring_buf_ring;

/*
 * The worker's provided-buffer ring: the kernel picks a free buffer for each
 * multishot recv completion, so receive memory is bounded by the ring, not by
 * the number of connections (an idle connection holds no buffer).
 */
typedef struct gw_bufring {
    struct io_uring_buf_ring *br;
    char *base;       /* nbufs * size bytes, buffer i at base + i * size */
    uint32_t size;    /* bytes per buffer */
    uint32_t nbufs;   /* power of two */
    uint16_t bgid;    /* buffer group id in the ring */
    uint16_t *refs;   /* holders of each buffer; 0 = owned by the kernel */
    uint32_t pending; /* buffers added back since the last ring advance */
    uint32_t held;    /* buffers out of the kernel's hands */
    /* Spare buffers, ids [nbufs, nbufs + nspare): never in the kernel's ring,
     * handed out by gw_buf_spare to a layer that makes bytes of its own (TLS
     * plaintext), so the owner sees them exactly like received buffers. Their
     * memory is touched only when first used. */
    uint32_t nspare;
    uint32_t *spare_free; /* stack of free spare ids */
    uint32_t nspare_free;
} gw_bufring_t;

/* What a segment's bytes belong to, i.e. what to release once they are sent. */
#define GW_SEG_HEAP (-1)   /* `block` is malloc'ed: free it */
#define GW_SEG_STATIC (-2) /* static or owned elsewhere: nothing to release */

/*
 * A piece of output: bytes that will be sent in order. Forwarded data points
 * straight into a provided buffer (bid >= 0, one reference held), so a body
 * goes from one socket to the other without being copied.
 */
typedef struct gw_seg gw_seg_t;
struct gw_seg {
    gw_seg_t *next;
    const char *data;
    uint32_t len;
    int32_t bid;  /* provided buffer id, or GW_SEG_HEAP / GW_SEG_STATIC */
    void *block;  /* for GW_SEG_HEAP */
};

typedef struct gw_segq {
    gw_seg_t *head;
    gw_seg_t **tailp;
    uint32_t bytes;
    uint32_t count;
} gw_segq_t;

/* A per-worker free list of segments. */
typedef struct gw_seg_cache {
    gw_seg_t *free;
    uint32_t nfree;
} gw_seg_cache_t;

#endif
