#include "buf.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gw.h"

/* Spares per ring buffer: TLS plaintext of the data a worker holds at once. */
#define SPARE_FACTOR 2

int gw_bufring_init(gw_bufring_t *b, struct io_uring *ring, uint16_t bgid, uint32_t nbufs, uint32_t size)
{
    struct io_uring_buf_reg reg;
    size_t ring_bytes = (size_t)nbufs * sizeof(struct io_uring_buf);
    uint32_t nspare = nbufs * SPARE_FACTOR;
    size_t total = (size_t)(nbufs + nspare) * size;
    void *mem;
    int ret;

    memset(b, 0, sizeof(*b));
    if (nbufs == 0 || (nbufs & (nbufs - 1)) || nbufs > 32768)
        return -EINVAL;
    /* The ring itself must be page aligned. The buffers are faulted in now:
     * the ring cycles through all of them within its first nbufs receives,
     * and a page fault there would land on the request path. They are a fixed
     * cost of the worker, not of any connection. */
    mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    b->br = mem;
    b->base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (b->base == MAP_FAILED) {
        ret = -errno;
        munmap(mem, ring_bytes);
        return ret;
    }
    /* Fault in the ring's part only (what MAP_POPULATE did for it alone). */
    for (size_t off = 0; off < (size_t)nbufs * size; off += 4096)
        b->base[off] = 0;
    b->refs = calloc(nbufs + nspare, sizeof(*b->refs));
    b->spare_free = malloc(nspare * sizeof(*b->spare_free));
    if (b->refs == NULL || b->spare_free == NULL) {
        free(b->refs);
        free(b->spare_free);
        munmap(b->base, total);
        munmap(mem, ring_bytes);
        return -ENOMEM;
    }
    /* Lowest ids on top, so the same few spares (and pages) are reused. */
    for (uint32_t i = 0; i < nspare; i++)
        b->spare_free[i] = nbufs + nspare - 1 - i;
    b->nspare = nspare;
    b->nspare_free = nspare;
    b->size = size;
    b->nbufs = nbufs;
    b->bgid = bgid;

    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)mem;
    reg.ring_entries = nbufs;
    reg.bgid = bgid;
    ret = io_uring_register_buf_ring(ring, &reg, 0);
    if (ret < 0) {
        gw_bufring_free(b, NULL);
        return ret;
    }
    io_uring_buf_ring_init(b->br);
    for (uint32_t i = 0; i < nbufs; i++)
        io_uring_buf_ring_add(b->br, gw_buf_data(b, i), size, (unsigned short)i, io_uring_buf_ring_mask(nbufs),
                              (int)i);
    io_uring_buf_ring_advance(b->br, (int)nbufs);
    return 0;
}

void gw_bufring_free(gw_bufring_t *b, struct io_uring *ring)
{
    if (b->br == NULL)
        return;
    if (ring)
        io_uring_unregister_buf_ring(ring, b->bgid);
    munmap(b->base, (size_t)(b->nbufs + b->nspare) * b->size);
    munmap(b->br, (size_t)b->nbufs * sizeof(struct io_uring_buf));
    free(b->refs);
    free(b->spare_free);
    memset(b, 0, sizeof(*b));
}

void gw_buf_unref(gw_bufring_t *b, uint32_t bid)
{
    if (--b->refs[bid] != 0)
        return;
    if (bid >= b->nbufs) {
        b->spare_free[b->nspare_free++] = bid;
        return;
    }
    io_uring_buf_ring_add(b->br, gw_buf_data(b, bid), b->size, (unsigned short)bid, io_uring_buf_ring_mask(b->nbufs),
                          (int)b->pending);
    b->pending++;
    b->held--;
}

int gw_buf_spare(gw_bufring_t *b)
{
    uint32_t bid;

    if (b->nspare_free == 0)
        return -ENOBUFS;
    bid = b->spare_free[--b->nspare_free];
    b->refs[bid] = 1;
    return (int)bid;
}

uint32_t gw_bufring_commit(gw_bufring_t *b)
{
    uint32_t n = b->pending;

    if (n) {
        io_uring_buf_ring_advance(b->br, (int)n);
        b->pending = 0;
    }
    return n;
}

gw_seg_t *gw_seg_alloc(gw_seg_cache_t *sc)
{
    gw_seg_t *s = sc->free;

    if (s) {
        sc->free = s->next;
        sc->nfree--;
        return s;
    }
    return malloc(sizeof(*s));
}

void gw_seg_release(gw_seg_cache_t *sc, gw_bufring_t *b, gw_seg_t *s)
{
    if (s->bid >= 0)
        gw_buf_unref(b, (uint32_t)s->bid);
    else if (s->bid == GW_SEG_HEAP)
        free(s->block);
    /* Keep a bounded cache; beyond it give memory back to the allocator. */
    if (sc->nfree >= 4096) {
        free(s);
        return;
    }
    s->next = sc->free;
    sc->free = s;
    sc->nfree++;
}

void gw_seg_cache_free(gw_seg_cache_t *sc)
{
    while (sc->free) {
        gw_seg_t *s = sc->free;

        sc->free = s->next;
        free(s);
    }
    sc->nfree = 0;
}

void gw_segq_clear(gw_segq_t *q, gw_seg_cache_t *sc, gw_bufring_t *b)
{
    while (q->head) {
        gw_seg_t *s = q->head;

        q->head = s->next;
        gw_seg_release(sc, b, s);
    }
    gw_segq_init(q);
}

int gw_segq_unpin(gw_segq_t *q, gw_bufring_t *b)
{
    for (gw_seg_t *s = q->head; s; s = s->next) {
        char *block;

        if (s->bid < 0)
            continue;
        block = malloc(s->len);
        if (block == NULL)
            return -ENOMEM;
        memcpy(block, s->data, s->len);
        gw_buf_unref(b, (uint32_t)s->bid);
        s->data = block;
        s->bid = GW_SEG_HEAP;
        s->block = block;
    }
    return 0;
}

void gw_segq_consume(gw_segq_t *q, gw_seg_cache_t *sc, gw_bufring_t *b, uint32_t n)
{
    while (n && q->head) {
        gw_seg_t *s = q->head;

        if (n < s->len) {
            s->data += n;
            s->len -= n;
            q->bytes -= n;
            return;
        }
        n -= s->len;
        q->bytes -= s->len;
        q->count--;
        q->head = s->next;
        gw_seg_release(sc, b, s);
    }
    if (q->head == NULL)
        q->tailp = &q->head;
}
