/*
 * Responses the gateway makes itself: error pages and redirects in nginx's
 * shape (its status lines, its page bodies), and answers with a body of our
 * own (return's text, a file for error_page).
 */
#ifndef GW_ERRORS_H
#define GW_ERRORS_H

#include <stddef.h>
#include <stdint.h>

/* One answer of our own, before it is written out. */
typedef struct gw_answer {
    unsigned status;
    const char *ctype;     /* Content-Type, NULL: none */
    const char *location;  /* Location, NULL: none */
    uint32_t location_len;
    const char *body;      /* NULL with body_len 0: an empty body */
    size_t body_len;
    int keepalive;
    int head_only;         /* HEAD: the head a GET would get, no body */
    const char *top;       /* the lines opening the head (Server, Date); NULL: "Server: gateway" */
    size_t top_len;
    const char *extra;     /* lines after Content-Length (a file's Last-Modified, ETag), may be NULL */
    size_t extra_len;
    const char *added;     /* the lines closing it (add_header), may be NULL */
    size_t added_len;
    const char *sig;       /* the server's name at the foot of a page; NULL: "gateway" */
} gw_answer_t;

/* The complete response for `a`, malloc'ed; NULL when out of memory. */
char *gw_http_answer(const gw_answer_t *a, uint32_t *len);

/*
 * Complete `a` as nginx's response for a->status (301, 302, 400, 404, 413,
 * 502, ...): its built-in page when it has one (text/html), else an empty
 * body; a->location (may be NULL) for redirects. Then as gw_http_answer.
 */
char *gw_http_special_response(gw_answer_t *a, uint32_t *len);

/* nginx's reason phrase for the status line ("Moved Temporarily" for 302); "" when it has none. */
const char *gw_http_reason(unsigned status);

#endif
