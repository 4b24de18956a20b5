/* Types of the HTTP configuration (see http_conf.c). */
#ifndef GW_HTTP_T_H
#define GW_HTTP_T_H

#include <stdint.h>

#include "balancer/balancer-t.h"
#include "core/addr.h"

struct gw_cv; /* a compiled complex value (vars.h) */

/*
 * Settings allowed at http, server and location level (each directive's
 * table entry says which); a level inherits what it leaves unset, as nginx
 * merges. All times in ms, sizes in bytes, GW_CONF_UNSET_* until merged.
 */
typedef struct gw_http_lconf {
    uint64_t client_max_body_size; /* 0 = unlimited */
    uint64_t keepalive_timeout;    /* 0 = no keep-alive */
    uint64_t keepalive_requests;
    uint64_t client_header_timeout;
    uint64_t client_body_timeout;
    uint64_t send_timeout;
    uint64_t proxy_connect_timeout;
    uint64_t proxy_read_timeout;
    uint64_t proxy_send_timeout;
    uint64_t proxy_next_upstream; /* GW_FT_* mask */
    uint64_t proxy_next_upstream_tries;   /* 0 = no limit */
    uint64_t proxy_next_upstream_timeout; /* ms, 0 = no limit */
} gw_http_lconf_t;

/* Header rewriting settings of one level (headers.h); the same position in
 * every level's struct (after lc and ans), so one setter serves all three. */
typedef struct gw_hconf gw_hconf_t;

/* proxy_next_upstream conditions (nginx's names). */
enum {
    GW_FT_ERROR = 1u << 0,
    GW_FT_TIMEOUT = 1u << 1,
    GW_FT_INVALID_HEADER = 1u << 2,
    GW_FT_HTTP_500 = 1u << 3,
    GW_FT_HTTP_502 = 1u << 4,
    GW_FT_HTTP_503 = 1u << 5,
    GW_FT_HTTP_504 = 1u << 6,
    GW_FT_HTTP_403 = 1u << 7,
    GW_FT_HTTP_404 = 1u << 8,
    GW_FT_HTTP_429 = 1u << 9,
    GW_FT_NON_IDEMPOTENT = 1u << 10,
};

/* An allow/deny rule (access.c): family 0 is "all". */
typedef struct gw_access_rule {
    uint8_t family; /* AF_INET, AF_INET6, or 0 for "all" */
    uint8_t deny;
    uint8_t addr[16]; /* network, already masked */
    uint8_t mask[16];
} gw_access_rule_t;

/* error_page CODE [=[CODE]] TARGET: one entry per code. */
typedef struct gw_error_page {
    uint16_t status;
    int16_t overwrite;    /* -1: keep the original status; 0 ("="): the target's; else this status */
    struct gw_cv *target; /* URI, @name or URL (may hold variables) */
} gw_error_page_t;

/*
 * What the gateway answers itself (conf_answers.c): return, error_page,
 * root, allow/deny, internal, ... The second member of every level's struct
 * (http conf, server, location), so a directive's setter finds it at the
 * same offset whatever the level. Merged downwards in conf_answers.c.
 */
typedef struct gw_http_ans {
    struct gw_cv *ret_text; /* return's text or URL; NULL: none */
    uint16_t ret_code;      /* 0: no return at this level */
    uint8_t internal;       /* location only */
    uint8_t intercept_errors; /* proxy_intercept_errors: 0 unset, 1 off, 2 on */
    uint8_t own;            /* GW_ANS_OWN_*: what this level allocated (the rest is its parent's) */
    gw_error_page_t *error_pages; /* NULL: inherited */
    uint32_t nerror_pages;
    gw_access_rule_t *rules; /* NULL: inherited */
    uint32_t nrules;
    char *root; /* NULL: inherited ("html" in the prefix at the top) */
    uint32_t hdr_buf_n, hdr_buf_size; /* large_client_header_buffers; 0 unset */
} gw_http_ans_t;

enum { GW_ANS_OWN_PAGES = 1, GW_ANS_OWN_RULES = 2, GW_ANS_OWN_ROOT = 4 };

typedef struct gw_http_loc {
    gw_http_lconf_t lc;
    gw_http_ans_t ans;
    gw_hconf_t *hconf; /* proxy_set_header, add_header, ... (conf_headers.c) */
    char *match; /* the location's URI */
    uint32_t match_len;
    uint8_t exact;            /* location = /x */
    char *proxy_pass;         /* as written, resolved in init_cycle */
    gw_upstream_t *upstream;  /* NULL: nothing to proxy to (404) */
    char *proxy_host;         /* nginx's $proxy_host: the Host sent upstream */
    uint32_t proxy_host_len;
    char *proxy_uri;          /* URI part of proxy_pass ("/" in http://b/), NULL if none */
    uint32_t proxy_uri_len;
    const char *file;
    uint32_t line;
} gw_http_loc_t;

typedef struct gw_http_listen_conf {
    gw_addr_t addr;
    int default_server;
    int backlog;
    const char *file;
    uint32_t line;
} gw_http_listen_conf_t;

typedef struct gw_http_srv {
    gw_http_lconf_t lc;
    gw_http_ans_t ans;
    gw_hconf_t *hconf;
    char **names; /* server_name, lower-cased */
    uint32_t nnames;
    gw_http_loc_t **locs; /* exact matches first, then prefixes longest first */
    uint32_t nlocs;
    gw_http_listen_conf_t *listens;
    uint32_t nlistens;
    const char *file;
    uint32_t line;
} gw_http_srv_t;

/* The servers sharing one listening address: a listen's ctx. */
typedef struct gw_http_addr {
    gw_addr_t addr; /* as configured ($server_addr, $server_port) */
    gw_http_srv_t **srvs;
    uint32_t nsrvs;
    gw_http_srv_t *dflt;
} gw_http_addr_t;

typedef struct gw_http_conf {
    gw_http_lconf_t lc;
    gw_http_ans_t ans;
    gw_hconf_t *hconf;
    gw_http_srv_t **srvs;
    uint32_t nsrvs;
    gw_http_addr_t **addrs;
    uint32_t naddrs;
} gw_http_conf_t;

#endif
