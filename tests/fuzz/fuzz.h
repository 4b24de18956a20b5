/*
 * Helpers shared by the libFuzzer targets (see README.md here).
 *
 * Every target parses the same input twice: whole, and cut into pieces
 * whose sizes the input's first byte chooses. The gateway receives bytes in
 * whatever pieces the network delivers, so the two outcomes must be equal;
 * a difference is a bug (abort). Each piece is parsed from its own
 * exactly-sized heap copy, so ASan reports any read past what "arrived".
 */
#ifndef GW_FUZZ_H
#define GW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Size of the next piece: all of it (step 0), or step bytes at a time. */
static inline size_t fuzz_piece(size_t left, unsigned step)
{
    if (step == 0 || step > left)
        return left;
    return step;
}

/* An exactly-sized copy (at least one byte allocated, none readable past n). */
static inline char *fuzz_copy(const uint8_t *p, size_t n)
{
    char *c = malloc(n ? n : 1);

    if (c == NULL)
        abort();
    if (n)
        memcpy(c, p, n);
    return c;
}

/* A broken invariant: say which, then crash so libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond)                                                                              \
    do {                                                                                               \
        if (!(cond)) {                                                                                 \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                                   \
        }                                                                                              \
    } while (0)

#endif
