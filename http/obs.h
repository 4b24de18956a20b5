/*
 * Observability hooks the exchange calls: counters for the scrape
 * (metrics.c), the scrape and stub_status answers (scrape.c), and the access
 * log (accesslog.c). Everything here runs in the worker that owns the
 * request and writes only that worker's counters.
 *
 * A request's life as the counters see it:
 *   gw_obs_request_begin  first byte (or the previous pipelined request ended): Reading
 *   gw_obs_head_done      head complete and routed: Writing
 *   gw_obs_request_end    over (answered, aborted or the connection gone): counted, logged
 * and each upstream attempt within it:
 *   gw_obs_attempt_begin -> [connected] -> [header | failed] -> gw_obs_attempt_end
 */
#ifndef GW_HTTP_OBS_H
#define GW_HTTP_OBS_H

#include "core/module.h"
#include "core/worker-t.h"
#include "request-t.h"

/* lconf.obs_handler values */
enum { GW_OBS_NO_HANDLER = 0, GW_OBS_PROMETHEUS = 1, GW_OBS_STUB_STATUS = 2 };

/* req->obs_phase */
enum { GW_OBS_NONE = 0, GW_OBS_READING, GW_OBS_WRITING };

extern const gw_module_t gw_obs_module;

void gw_obs_request_begin(gw_worker_t *w, gw_http_req_t *req);
void gw_obs_head_done(gw_worker_t *w, gw_http_req_t *req);
void gw_obs_request_end(gw_worker_t *w, gw_http_req_t *req);

void gw_obs_attempt_begin(gw_http_req_t *req, int pooled);
void gw_obs_attempt_connected(gw_http_req_t *req);
void gw_obs_attempt_header(gw_http_req_t *req);
/* The attempt failed: `status` is what it maps to (502, 504); `counts` when it is a peer failure. */
void gw_obs_attempt_failed(gw_http_req_t *req, unsigned status, int counts);
void gw_obs_attempt_end(gw_http_req_t *req);
/* No server could be picked (nginx's "no live upstreams"): an attempt naming the upstream, 502. */
void gw_obs_attempt_none(gw_http_req_t *req);

/*
 * The location answers itself (prometheus; or stub_status;): build the
 * answer and end the response side. 0, or GW_ERR when the exchange ended
 * (see proxy.h's convention).
 */
int gw_obs_handle(gw_worker_t *w, gw_http_req_t *req, unsigned handler);

/* Log a failure about req to its location's error_log (or the main one), nginx-shaped:
 * "what (err: strerror) while ..., client: ..., server: ..., request: ..., upstream: ..., host: ..." */
void gw_obs_log_upstream(const gw_http_req_t *req, const char *what, int err);

#endif
