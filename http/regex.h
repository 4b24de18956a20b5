/*
 * PCRE2 regular expressions for server_name ~ and location ~ / ~*, compiled
 * once at configuration time (JIT when the library has it) and matched on
 * the request path with per-thread match data.
 */
#ifndef GW_REGEX_H
#define GW_REGEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_regex gw_regex_t;

/* Captures of the last match: $0 .. $9 as [start, end) offsets; n pairs set. */
#define GW_REGEX_MAX_CAPS 10
typedef struct gw_regex_caps {
    uint32_t n;
    uint32_t ov[2 * GW_REGEX_MAX_CAPS];
} gw_regex_caps_t;

/*
 * Compile `pattern` (caseless: nginx's ~* and server_name ~). NULL on error,
 * with msg in nginx's words: pcre2_compile() failed: REASON in "PATTERN" at "REST"
 * (without the "at" part when the error is at the end).
 */
gw_regex_t *gw_regex_compile(const char *pattern, int caseless, char *msg, size_t size);

/* 1: [s, s+len) matches (caps filled when not NULL), 0: no match, -1: matching failed. */
int gw_regex_match(const gw_regex_t *re, const char *s, size_t len, gw_regex_caps_t *caps);

void gw_regex_free(gw_regex_t *re);

/* Free the calling thread's match data (a worker calls it when it is done with a configuration). */
void gw_regex_thread_exit(void);

#endif
