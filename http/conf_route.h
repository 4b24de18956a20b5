/* The routing directives and their setup (see conf_route.c). */
#ifndef GW_CONF_ROUTE_H
#define GW_CONF_ROUTE_H

#include "core/module.h"
#include "http-t.h"

extern const gw_module_t gw_route_module;

/* After the http block: proxy_pass resolved, location and server_name tables built, listens registered. */
int gw_route_init_cycle(gw_cycle_t *cy, gw_conf_err_t *err);

/* What conf_route.c allocated in a location, a server, the addresses (not the structs themselves). */
void gw_route_free_loc(gw_http_loc_t *l);
void gw_route_free_server(gw_http_srv_t *s);
void gw_route_free_addrs(gw_http_conf_t *hc);

#endif
