/*
 * limit_req_zone / limit_req: nginx's request rate limiting (a leaky bucket
 * per key, with burst and nodelay/delay=), checked where nginx checks it:
 * after `return` (rewrite phase) and before allow/deny (access phase).
 */
#ifndef GW_LIMIT_REQ_H
#define GW_LIMIT_REQ_H

#include "core/module.h"
#include "request-t.h"

extern const gw_module_t gw_limit_req_module;

/* What the check decided. */
enum {
    GW_LIMIT_PASS = 0, /* go on now */
    GW_LIMIT_REJECT,   /* answer *status (limit_req_status) */
    GW_LIMIT_DELAY,    /* go on after *delay_ms */
};

/* Account req in every zone its location limits it by. */
int gw_limit_req_check(gw_worker_t *w, gw_http_req_t *req, unsigned *status, uint64_t *delay_ms);

#endif
