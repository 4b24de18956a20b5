/*
 * A strict RFC 9112 (7.1) check of chunked framing, run over the raw bytes
 * of a chunked request body next to llhttp (see chunked.c for why).
 */
#ifndef GW_CHUNKED_H
#define GW_CHUNKED_H

#include <stdint.h>

typedef struct gw_chunked {
    uint64_t left; /* chunk-data bytes still to come in the current chunk */
    uint32_t bad;  /* after GW_CHUNKED_BAD: the offset of the refused byte in that call */
    uint16_t run;  /* bytes in the current extension or trailer line (bounded) */
    uint8_t state; /* private */
} gw_chunked_t;

/* Longest chunk-ext or trailer field line accepted. */
#define GW_CHUNKED_MAX_LINE 4096

enum { GW_CHUNKED_BAD = -1, GW_CHUNKED_MORE = -2 };

static inline void gw_chunked_init(gw_chunked_t *c)
{
    c->left = 0;
    c->run = 0;
    c->state = 0;
}

/*
 * Scan the next n bytes of the body. Returns the number of bytes up to and
 * including the end of the chunked body when it ends within them,
 * GW_CHUNKED_MORE when all n were taken and the body goes on, or
 * GW_CHUNKED_BAD at the first byte the grammar does not allow (its offset
 * in c->bad).
 */
int gw_chunked_scan(gw_chunked_t *c, const char *p, uint32_t n);

#endif
