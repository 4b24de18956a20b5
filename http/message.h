/*
 * A parsed HTTP message head: the request target or status reason and the
 * header fields, copied as llhttp hands them over (a head may span several
 * receive buffers) into one growing store, with an index of (name, value)
 * offsets. Hop-by-hop and framing headers are recognised once, by id, so
 * nothing later compares names again.
 */
#ifndef GW_MESSAGE_H
#define GW_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

enum gw_hdr_id {
    GW_H_OTHER = 0,
    GW_H_HOST,
    GW_H_CONNECTION,
    GW_H_KEEP_ALIVE,
    GW_H_PROXY_CONNECTION,
    GW_H_TE,
    GW_H_TRAILER,
    GW_H_TRANSFER_ENCODING,
    GW_H_UPGRADE,
    GW_H_CONTENT_LENGTH,
    GW_H_EXPECT,
};

/* What a header name holds besides [A-Za-z0-9-] (nginx's valid names; see headers.c). */
enum {
    GW_HF_UNDERSCORE = 1u << 0, /* an '_' */
    GW_HF_INVALID = 1u << 1,    /* any other character ('.', '!', ...) */
};

typedef struct gw_hdr {
    uint32_t name, name_len;   /* offsets into the store */
    uint32_t value, value_len;
    uint32_t hash;             /* gw_hdr_hash() of the name, computed once while parsing */
    uint8_t id;                /* enum gw_hdr_id */
    uint8_t flags;             /* GW_HF_* */
} gw_hdr_t;

typedef struct gw_msg {
    char *buf; /* store: first line part (target or reason), then names and values */
    uint32_t len, cap;
    gw_hdr_t *h;
    uint32_t n, hcap;
    uint32_t line_len; /* the request target or status reason, at offset 0 */
    uint8_t phase;     /* private: where the parser is within a header */
    uint32_t max_line, max_total; /* limits (large_client_header_buffers); 0: the defaults below */
} gw_msg_t;

/* Default limits (nginx's large_client_header_buffers 4 8k; one line 8 KiB, all 32 KiB). */
#define GW_MSG_MAX_LINE 8192
#define GW_MSG_MAX_TOTAL 32768
#define GW_MSG_MAX_HEADERS 256

enum { GW_MSG_OK = 0, GW_MSG_TOO_LONG_LINE = -1, GW_MSG_TOO_LARGE = -2, GW_MSG_NOMEM = -3 };

void gw_msg_reset(gw_msg_t *m);
void gw_msg_free(gw_msg_t *m);

/* Feeders for llhttp callbacks. Each returns GW_MSG_OK or a negative GW_MSG_* code. */
int gw_msg_line(gw_msg_t *m, const char *p, size_t n); /* target / reason bytes */
void gw_msg_line_done(gw_msg_t *m);
int gw_msg_field(gw_msg_t *m, const char *p, size_t n);
int gw_msg_field_done(gw_msg_t *m);
int gw_msg_value(gw_msg_t *m, const char *p, size_t n);
int gw_msg_value_done(gw_msg_t *m);

static inline const char *gw_msg_str(const gw_msg_t *m, uint32_t off)
{
    return m->buf + off;
}

/* The last header (the one just completed). */
static inline gw_hdr_t *gw_msg_last(gw_msg_t *m)
{
    return &m->h[m->n - 1];
}

/* FNV-1a over the lower-cased name: header names configured (proxy_set_header,
 * proxy_hide_header, ...) are hashed the same way once at load, so a request's
 * headers are matched against them by an integer compare first. */
static inline uint32_t gw_hdr_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        h = (h ^ (c >= 'A' && c <= 'Z' ? c | 0x20 : c)) * 16777619u;
    }
    return h;
}

/* Case-insensitive comma-separated token search: does `value` list `token`? */
int gw_token_list_has(const char *value, size_t len, const char *token);

#endif
