/* The HTTP module: configuration, accepting connections, per-worker state. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "core/module.h"
#include "core/worker-t.h"
#include "http-t.h"

extern const gw_module_t gw_http_module;
extern const gw_conf_cmd_t gw_http_cmds[];
extern const gw_module_t gw_http_headers_module; /* conf_headers.c */

/* A connection was accepted on a listen whose ctx is a gw_http_addr_t. */
void gw_http_accept(gw_worker_t *w, gw_conn_t *c, const gw_listen_t *l);

/* The location for `path` in server s (client.c), NULL when none matches. */
/* Append item to a configuration list of pointers; 0, or -1 out of memory (http_conf.c). */
int gw_http_push_ptr(void *arrayp, uint32_t *n, void *item);

const gw_http_loc_t *gw_http_find_location(const gw_http_srv_t *s, const char *path, uint32_t len);

int gw_http_init_worker(gw_worker_t *w, gw_wcycle_t *wc);
void gw_http_exit_worker(gw_worker_t *w, gw_wcycle_t *wc);

#endif
