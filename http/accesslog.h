/*
 * Access logs (accesslog.c): log_format, access_log, and writing a request's
 * line into the worker's buffer for its file, written through the ring.
 */
#ifndef GW_HTTP_ACCESSLOG_H
#define GW_HTTP_ACCESSLOG_H

#include "core/conf-t.h"
#include "core/cycle-t.h"
#include "core/worker-t.h"
#include "request-t.h"

int gw_accesslog_set_format(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                            gw_conf_err_t *err);
int gw_accesslog_set(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err);
int gw_accesslog_init_cycle(gw_cycle_t *cy, gw_conf_err_t *err);
void gw_accesslog_free_cycle(gw_cycle_t *cy);

/* vars_log.c's variables are linked in (see there). */
int gw_vars_log_linked(void);

/* The request is over with `status` (what the log shows): write its lines. */
void gw_accesslog_request(gw_worker_t *w, gw_http_req_t *req, unsigned status);

/* Free the calling worker thread's line buffer (its configurations are done with). */
void gw_accesslog_thread_free(void);

#endif
