/*
 * Tests for core/buf.c: the output segment queue (push, partial and whole
 * consumes across heap, static and buffer segments, clear), the segment
 * cache, and the provided-buffer ring's reference counting on a real
 * io_uring (a buffer goes back to the kernel only with its last reference,
 * and returns are published in batches by gw_bufring_commit); unpinning a
 * queue (its pieces copied out of the buffers, which go back).
 *
 * Heap blocks must be freed exactly once: run under ASan to catch a double
 * free or a leak; the counters below catch a missed free without it.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/gw.h"
#include "tests/unit/test.h"

/* ---- segments without a buffer ring (heap and static only) ---- */

static gw_seg_t *seg_static(gw_seg_cache_t *sc, const char *s)
{
    gw_seg_t *g = gw_seg_alloc(sc);

    g->data = s;
    g->len = (uint32_t)strlen(s);
    g->bid = GW_SEG_STATIC;
    g->block = NULL;
    return g;
}

static gw_seg_t *seg_heap(gw_seg_cache_t *sc, const char *s)
{
    gw_seg_t *g = gw_seg_alloc(sc);
    size_t n = strlen(s);
    char *block = malloc(n + 1);

    memcpy(block, s, n + 1);
    g->data = block;
    g->len = (uint32_t)n;
    g->bid = GW_SEG_HEAP;
    g->block = block;
    return g;
}

/* Concatenate what q still holds, checking bytes and count against the list. */
static const char *contents(const gw_segq_t *q)
{
    static char out[4096];
    size_t n = 0;
    uint32_t count = 0, bytes = 0;

    for (const gw_seg_t *s = q->head; s; s = s->next) {
        memcpy(out + n, s->data, s->len);
        n += s->len;
        bytes += s->len;
        count++;
        if (s->next == NULL)
            CHECK(q->tailp == &((gw_seg_t *)s)->next);
    }
    out[n] = '\0';
    CHECK_INT(q->bytes, bytes);
    CHECK_INT(q->count, count);
    if (q->head == NULL)
        CHECK(q->tailp == &((gw_segq_t *)q)->head);
    return out;
}

static void test_segq_basics(void)
{
    gw_seg_cache_t sc = {0};
    gw_segq_t q;

    gw_segq_init(&q);
    CHECK(q.head == NULL);
    CHECK_INT(q.bytes, 0);
    CHECK_INT(q.count, 0);
    CHECK_STR(contents(&q), "");

    gw_segq_push(&q, seg_static(&sc, "HTTP/1.1 200 OK\r\n"));
    gw_segq_push(&q, seg_heap(&sc, "Content-Length: 5\r\n\r\n"));
    gw_segq_push(&q, seg_static(&sc, "hello"));
    CHECK_INT(q.count, 3);
    CHECK_INT(q.bytes, 17 + 21 + 5);
    CHECK_STR(contents(&q), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");

    /* consuming nothing changes nothing */
    gw_segq_consume(&q, &sc, NULL, 0);
    CHECK_INT(q.count, 3);
    CHECK_STR(contents(&q), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");

    /* partial: trimmed in place */
    gw_segq_consume(&q, &sc, NULL, 9);
    CHECK_STR(contents(&q), "200 OK\r\nContent-Length: 5\r\n\r\nhello");
    CHECK_INT(q.count, 3);
    CHECK_INT(sc.nfree, 0);
    /* exactly the rest of the first: released */
    gw_segq_consume(&q, &sc, NULL, 8);
    CHECK_STR(contents(&q), "Content-Length: 5\r\n\r\nhello");
    CHECK_INT(q.count, 2);
    CHECK_INT(sc.nfree, 1);
    /* across the heap segment into the last one */
    gw_segq_consume(&q, &sc, NULL, 21 + 2);
    CHECK_STR(contents(&q), "llo");
    CHECK_INT(q.count, 1);
    CHECK_INT(sc.nfree, 2);
    /* everything: the tail pointer comes back to head */
    gw_segq_consume(&q, &sc, NULL, 3);
    CHECK_STR(contents(&q), "");
    CHECK_INT(sc.nfree, 3);

    /* push after emptying appends properly */
    gw_segq_push(&q, seg_static(&sc, "a"));
    gw_segq_push(&q, seg_heap(&sc, "bc"));
    CHECK_INT(sc.nfree, 1); /* two came from the cache */
    CHECK_STR(contents(&q), "abc");
    /* more than queued: everything goes, nothing underflows */
    gw_segq_consume(&q, &sc, NULL, 1000);
    CHECK_STR(contents(&q), "");
    CHECK_INT(q.bytes, 0);
    CHECK_INT(q.count, 0);

    /* clear releases heap blocks (ASan reports a leak otherwise) */
    gw_segq_push(&q, seg_heap(&sc, "one"));
    gw_segq_push(&q, seg_static(&sc, "two"));
    gw_segq_push(&q, seg_heap(&sc, "three"));
    gw_segq_clear(&q, &sc, NULL);
    CHECK_STR(contents(&q), "");
    CHECK_INT(sc.nfree, 3);
    gw_segq_clear(&q, &sc, NULL); /* twice: harmless */
    CHECK_INT(sc.nfree, 3);

    gw_seg_cache_free(&sc);
    CHECK(sc.free == NULL);
    CHECK_INT(sc.nfree, 0);
}

/* Consume a fixed text in every pattern of step sizes: the remainder is always right. */
static void test_segq_every_split(void)
{
    static const char *parts[] = {"GET ", "/index.html", " ", "HTTP/1.1\r\n", "Host: x\r\n", "\r\n"};
    char whole[128] = "";
    gw_seg_cache_t sc = {0};

    for (size_t i = 0; i < GW_ARRAY_SIZE(parts); i++)
        strcat(whole, parts[i]);
    for (uint32_t first = 0; first <= strlen(whole); first++) {
        for (uint32_t step = 1; step <= 13; step++) {
            gw_segq_t q;
            uint32_t done;

            gw_segq_init(&q);
            for (size_t i = 0; i < GW_ARRAY_SIZE(parts); i++)
                gw_segq_push(&q, i % 2 ? seg_heap(&sc, parts[i]) : seg_static(&sc, parts[i]));
            gw_segq_consume(&q, &sc, NULL, first);
            done = first;
            CHECK_STR(contents(&q), whole + done);
            while (q.head) {
                gw_segq_consume(&q, &sc, NULL, step);
                done = done + step < strlen(whole) ? done + step : (uint32_t)strlen(whole);
                CHECK_STR(contents(&q), whole + done);
            }
            CHECK_INT(done, strlen(whole));
        }
    }
    gw_seg_cache_free(&sc);
}

static void test_seg_cache(void)
{
    gw_seg_cache_t sc = {0};
    gw_seg_t *a, *b, *c;
    enum { MANY = 4096 + 10 };
    static gw_seg_t *many[MANY];

    a = gw_seg_alloc(&sc);
    b = gw_seg_alloc(&sc);
    CHECK(a != NULL && b != NULL && a != b);
    a->bid = b->bid = GW_SEG_STATIC;
    gw_seg_release(&sc, NULL, a);
    gw_seg_release(&sc, NULL, b);
    CHECK_INT(sc.nfree, 2);
    /* LIFO reuse */
    c = gw_seg_alloc(&sc);
    CHECK(c == b);
    CHECK_INT(sc.nfree, 1);
    c->bid = GW_SEG_STATIC;
    gw_seg_release(&sc, NULL, c);

    /* bounded: beyond 4096 cached segments the rest are freed (ASan: no leak) */
    for (int i = 0; i < MANY; i++) {
        many[i] = gw_seg_alloc(&sc);
        many[i]->bid = GW_SEG_STATIC;
    }
    CHECK_INT(sc.nfree, 0);
    for (int i = 0; i < MANY; i++)
        gw_seg_release(&sc, NULL, many[i]);
    CHECK_INT(sc.nfree, 4096);
    gw_seg_cache_free(&sc);
    CHECK_INT(sc.nfree, 0);
}

/* ---- the provided-buffer ring, on a real io_uring ---- */

static struct io_uring ring;
static gw_bufring_t br;

/* Buffer ids published to the kernel: the ring's tail says how many entries. */
static uint16_t ring_tail(void)
{
    return io_uring_smp_load_acquire(&br.br->tail);
}

static gw_seg_t *seg_buf(gw_seg_cache_t *sc, uint32_t bid, uint32_t off, uint32_t len)
{
    gw_seg_t *g = gw_seg_alloc(sc);

    g->data = gw_buf_data(&br, bid) + off;
    g->len = len;
    g->bid = (int32_t)bid;
    g->block = NULL;
    return g;
}

static void test_bufring_init(void)
{
    gw_bufring_t bad;

    CHECK_INT(br.nbufs, 8);
    CHECK_INT(br.size, 4096);
    CHECK_INT(br.bgid, 0);
    CHECK_INT(br.held, 0);
    CHECK_INT(br.pending, 0);
    CHECK_INT(ring_tail(), 8); /* all eight handed to the kernel */
    for (uint32_t i = 0; i < 8; i++) {
        CHECK_INT(br.refs[i], 0);
        CHECK(gw_buf_data(&br, i) == br.base + i * 4096);
        CHECK_INT(br.br->bufs[i].bid, i);
        CHECK_INT(br.br->bufs[i].len, 4096);
        CHECK(br.br->bufs[i].addr == (uint64_t)(uintptr_t)gw_buf_data(&br, i));
    }
    /* the buffers are writable memory */
    memset(gw_buf_data(&br, 7), 'x', 4096);

    /* not a power of two, zero, too many: refused before touching the ring */
    CHECK_INT(gw_bufring_init(&bad, &ring, 1, 6, 4096), -EINVAL);
    CHECK_INT(gw_bufring_init(&bad, &ring, 1, 0, 4096), -EINVAL);
    CHECK_INT(gw_bufring_init(&bad, &ring, 1, 65536, 4096), -EINVAL);
    /* the same group id twice: the kernel refuses, nothing leaks */
    CHECK(gw_bufring_init(&bad, &ring, 0, 8, 4096) < 0);
    CHECK(bad.br == NULL);
    /* a second group works and can be freed */
    CHECK_INT(gw_bufring_init(&bad, &ring, 5, 16, 512), 0);
    CHECK_INT(bad.nbufs, 16);
    gw_bufring_free(&bad, &ring);
    CHECK(bad.br == NULL);
    gw_bufring_free(&bad, &ring); /* twice: harmless */
}

static void test_refs(void)
{
    uint16_t tail = ring_tail();

    /* a recv completion hands out buffer 3 */
    gw_buf_taken(&br, 3);
    CHECK_INT(br.refs[3], 1);
    CHECK_INT(br.held, 1);
    /* forwarded twice (two segments point into it) */
    gw_buf_ref(&br, 3);
    gw_buf_ref(&br, 3);
    CHECK_INT(br.refs[3], 3);
    CHECK_INT(br.held, 1); /* still one buffer out of the kernel's hands */
    gw_buf_unref(&br, 3);
    gw_buf_unref(&br, 3);
    CHECK_INT(br.refs[3], 1);
    CHECK_INT(br.pending, 0); /* not back while a reference remains */
    CHECK_INT(br.held, 1);
    gw_buf_unref(&br, 3);
    CHECK_INT(br.refs[3], 0);
    CHECK_INT(br.pending, 1); /* the last reference: re-added */
    CHECK_INT(br.held, 0);
    /* ... but not published until commit */
    CHECK_INT(ring_tail(), tail);
    CHECK_INT(br.br->bufs[tail & 7].bid, 3);
    CHECK(br.br->bufs[tail & 7].addr == (uint64_t)(uintptr_t)gw_buf_data(&br, 3));
    CHECK_INT(br.br->bufs[tail & 7].len, 4096);
    CHECK_INT(gw_bufring_commit(&br), 1);
    CHECK_INT(ring_tail(), (uint16_t)(tail + 1));
    CHECK_INT(br.pending, 0);
    CHECK_INT(gw_bufring_commit(&br), 0); /* nothing new */
    CHECK_INT(ring_tail(), (uint16_t)(tail + 1));

    /* several returns batched into one commit, in the order they came back */
    tail = ring_tail();
    gw_buf_taken(&br, 0);
    gw_buf_taken(&br, 1);
    gw_buf_taken(&br, 2);
    CHECK_INT(br.held, 3);
    gw_buf_unref(&br, 2);
    gw_buf_unref(&br, 0);
    CHECK_INT(br.held, 1);
    CHECK_INT(br.pending, 2);
    CHECK_INT(br.br->bufs[tail & 7].bid, 2);
    CHECK_INT(br.br->bufs[(tail + 1) & 7].bid, 0);
    CHECK_INT(gw_bufring_commit(&br), 2);
    CHECK_INT(ring_tail(), (uint16_t)(tail + 2));
    gw_buf_unref(&br, 1);
    CHECK_INT(br.held, 0);
    CHECK_INT(gw_bufring_commit(&br), 1);
}

static void test_segq_with_buffers(void)
{
    gw_seg_cache_t sc = {0};
    gw_segq_t q;
    char *d5 = gw_buf_data(&br, 5), *d6 = gw_buf_data(&br, 6);
    uint16_t tail;

    memcpy(d5, "abcdefgh", 8);
    memcpy(d6, "ABCDEFGH", 8);
    gw_bufring_commit(&br);
    tail = ring_tail();

    /* buffer 5 received; its reference handed to a segment, plus a second
     * slice of it (one more ref) and a slice of buffer 6 */
    gw_buf_taken(&br, 5);
    gw_buf_taken(&br, 6);
    gw_segq_init(&q);
    gw_segq_push(&q, seg_buf(&sc, 5, 0, 3));
    gw_buf_ref(&br, 5);
    gw_segq_push(&q, seg_buf(&sc, 5, 3, 5));
    gw_segq_push(&q, seg_static(&sc, "-"));
    gw_segq_push(&q, seg_buf(&sc, 6, 2, 4));
    gw_segq_push(&q, seg_heap(&sc, "!"));
    CHECK_STR(contents(&q), "abcdefgh-CDEF!");
    CHECK_INT(br.refs[5], 2);
    CHECK_INT(br.refs[6], 1);
    CHECK_INT(br.held, 2);

    /* partial inside the first slice: no reference dropped */
    gw_segq_consume(&q, &sc, &br, 2);
    CHECK_STR(contents(&q), "cdefgh-CDEF!");
    CHECK_INT(br.refs[5], 2);
    /* the first slice done: one reference left, buffer still held */
    gw_segq_consume(&q, &sc, &br, 1);
    CHECK_INT(br.refs[5], 1);
    CHECK_INT(br.pending, 0);
    /* across the second slice and the static one into buffer 6's */
    gw_segq_consume(&q, &sc, &br, 5 + 1 + 1);
    CHECK_STR(contents(&q), "DEF!");
    CHECK_INT(br.refs[5], 0);
    CHECK_INT(br.held, 1);
    CHECK_INT(br.pending, 1);
    CHECK_INT(br.br->bufs[tail & 7].bid, 5);
    CHECK_INT(br.refs[6], 1);

    /* clear drops the rest: buffer 6 back, heap block freed */
    gw_segq_clear(&q, &sc, &br);
    CHECK_STR(contents(&q), "");
    CHECK_INT(br.refs[6], 0);
    CHECK_INT(br.held, 0);
    CHECK_INT(br.pending, 2);
    CHECK_INT(br.br->bufs[(tail + 1) & 7].bid, 6);
    CHECK_INT(gw_bufring_commit(&br), 2);
    CHECK_INT(ring_tail(), (uint16_t)(tail + 2));
    gw_seg_cache_free(&sc);
}

/* Every buffer out and back, many times round: counts stay exact. */
static void test_refs_many(void)
{
    uint32_t seed = 7;
    uint16_t refs[8] = {0};
    uint32_t held = 0, pending = 0, committed = 0;
    uint16_t tail0 = ring_tail();

    gw_bufring_commit(&br);
    for (int iter = 0; iter < 20000; iter++) {
        uint32_t bid, op;

        seed = seed * 1103515245u + 12345u;
        bid = (seed >> 16) % 8;
        op = (seed >> 8) % 5;
        if (refs[bid] == 0) {
            if (op < 3) {
                gw_buf_taken(&br, bid);
                refs[bid] = 1;
                held++;
            }
        } else if (op == 0) {
            gw_buf_ref(&br, bid);
            refs[bid]++;
        } else if (op < 4) {
            gw_buf_unref(&br, bid);
            if (--refs[bid] == 0) {
                held--;
                pending++;
            }
        } else {
            committed += gw_bufring_commit(&br);
            pending = 0;
        }
        CHECK_INT(br.refs[bid], refs[bid]);
        CHECK_INT(br.held, held);
        CHECK_INT(br.pending, pending);
    }
    for (uint32_t bid = 0; bid < 8; bid++)
        while (refs[bid]) {
            gw_buf_unref(&br, bid);
            refs[bid]--;
        }
    committed += gw_bufring_commit(&br);
    CHECK_INT(br.held, 0);
    CHECK_INT(ring_tail(), (uint16_t)(tail0 + committed));
}

/* Spare buffers (TLS plaintext): never in the kernel's ring, recycled on the last unref. */
static void test_spares(void)
{
    uint16_t tail = ring_tail();
    uint32_t held = br.held;
    int a, b;

    CHECK_INT(br.nspare, 16);
    CHECK_INT(br.nspare_free, 16);
    a = gw_buf_spare(&br);
    b = gw_buf_spare(&br);
    CHECK_INT(a, 8); /* lowest ids first, right after the ring's */
    CHECK_INT(b, 9);
    CHECK(gw_buf_data(&br, (uint32_t)b) == br.base + 9 * 4096);
    memset(gw_buf_data(&br, (uint32_t)b), 'y', 4096); /* real memory */
    CHECK_INT(br.held, held); /* not counted as taken from the kernel */
    gw_buf_ref(&br, (uint32_t)a);
    gw_buf_unref(&br, (uint32_t)a);
    CHECK_INT(br.nspare_free, 14);
    gw_buf_unref(&br, (uint32_t)a);
    gw_buf_unref(&br, (uint32_t)b);
    CHECK_INT(br.nspare_free, 16);
    CHECK_INT(br.pending, 0); /* nothing went to the kernel's ring */
    CHECK_INT(gw_bufring_commit(&br), 0);
    CHECK_INT(ring_tail(), tail);
    CHECK_INT(gw_buf_spare(&br), 9); /* the last one returned is reused first */
    gw_buf_unref(&br, 9);
    for (int i = 0; i < 16; i++)
        CHECK(gw_buf_spare(&br) >= 8);
    CHECK_INT(gw_buf_spare(&br), -ENOBUFS);
    for (uint32_t i = 8; i < 24; i++)
        gw_buf_unref(&br, i);
    CHECK_INT(br.nspare_free, 16);
}

/* Unpinning: pieces in received buffers (ring or spare) become heap copies and the buffers go back. */
static void test_segq_unpin(void)
{
    gw_seg_cache_t sc = {0};
    gw_segq_t q;
    uint32_t held = br.held, spares = br.nspare_free;
    char *d2 = gw_buf_data(&br, 2), *d3 = gw_buf_data(&br, 3);
    int sp;

    gw_bufring_commit(&br);
    memcpy(d2, "0123456789", 10);
    memcpy(d3, "abcdef", 6);
    gw_buf_taken(&br, 2);
    gw_buf_taken(&br, 3);
    sp = gw_buf_spare(&br);
    CHECK(sp >= 8);
    memcpy(gw_buf_data(&br, (uint32_t)sp), "SPARE", 5);
    gw_segq_init(&q);
    gw_segq_push(&q, seg_buf(&sc, 2, 0, 4));
    gw_segq_push(&q, seg_static(&sc, "|"));
    gw_buf_ref(&br, 2);
    gw_segq_push(&q, seg_buf(&sc, 2, 6, 4)); /* a second slice of buffer 2 */
    gw_segq_push(&q, seg_heap(&sc, "+"));
    gw_segq_push(&q, seg_buf(&sc, 3, 1, 4));
    gw_segq_push(&q, seg_buf(&sc, (uint32_t)sp, 0, 5));
    CHECK_STR(contents(&q), "0123|6789+bcdeSPARE");
    CHECK_INT(br.held, held + 2);

    CHECK_INT(gw_segq_unpin(&q, &br), 0);
    CHECK_STR(contents(&q), "0123|6789+bcdeSPARE");
    CHECK_INT(q.count, 6);
    for (const gw_seg_t *s = q.head; s; s = s->next)
        CHECK(s->bid < 0);
    CHECK_INT(br.refs[2], 0);
    CHECK_INT(br.refs[3], 0);
    CHECK_INT(br.held, held); /* both back to the kernel's ring ... */
    CHECK_INT(br.pending, 2);
    CHECK_INT(br.nspare_free, spares); /* ... and the spare to its stack */
    /* the copies are what the buffers held, not the buffers themselves */
    memset(d2, 'x', 10);
    memset(d3, 'x', 6);
    CHECK_STR(contents(&q), "0123|6789+bcdeSPARE");
    CHECK_INT(gw_segq_unpin(&q, &br), 0); /* nothing left to copy */
    CHECK_INT(br.pending, 2);

    /* the copies are consumed and cleared like any heap piece (ASan: freed once) */
    gw_segq_consume(&q, &sc, &br, 6);
    CHECK_STR(contents(&q), "789+bcdeSPARE");
    gw_segq_clear(&q, &sc, &br);
    CHECK_INT(gw_bufring_commit(&br), 2);
    gw_seg_cache_free(&sc);
}

int main(void)
{
    int ret;

    RUN(test_segq_basics);
    RUN(test_segq_every_split);
    RUN(test_seg_cache);

    ret = io_uring_queue_init(8, &ring, 0);
    if (ret < 0) {
        fprintf(stderr, "SKIP buffer ring tests: io_uring_queue_init failed (%d: %s); no io_uring here\n", -ret,
                strerror(-ret));
        return gw_test_done() ? 1 : 77;
    }
    ret = gw_bufring_init(&br, &ring, 0, 8, 4096);
    if (ret < 0) {
        fprintf(stderr,
                "SKIP buffer ring tests: gw_bufring_init failed (%d: %s); provided buffer rings need Linux 5.19\n",
                -ret, strerror(-ret));
        io_uring_queue_exit(&ring);
        return gw_test_done() ? 1 : 77;
    }
    RUN(test_bufring_init);
    RUN(test_refs);
    RUN(test_spares);
    RUN(test_segq_with_buffers);
    RUN(test_refs_many);
    RUN(test_segq_unpin);
    gw_bufring_free(&br, &ring);
    CHECK(br.br == NULL);
    io_uring_queue_exit(&ring);
    return gw_test_done();
}
