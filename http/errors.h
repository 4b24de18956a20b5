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
} gw_answer_t;

/* The complete response for `a`, malloc'ed; NULL when out of memory. */
char *gw_http_answer(const gw_answer_t *a, uint32_t *len);

/*
 * A complete response for `status` (301, 302, 400, 404, 413, 502, ...) with
 * nginx's built-in page when it has one (text/html), else an empty body;
 * `location` (may be NULL) for redirects. NULL when out of memory.
 */
char *gw_http_special_response(unsigned status, const char *location, uint32_t location_len, int keepalive,
                               int head_only, uint32_t *len);

/* Same without a Location: the error pages. */
char *gw_http_error_response(unsigned status, int keepalive, int head_only, uint32_t *len);

/* nginx's reason phrase for the status line ("Moved Temporarily" for 302); "" when it has none. */
const char *gw_http_reason(unsigned status);

#endif
