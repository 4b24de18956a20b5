/*
 * Upgraded connections (WebSocket and any other protocol a 101 switches
 * to): once the upstream answers an upgrade request with 101 Switching
 * Protocols, the client and upstream connections become a two-way byte
 * tunnel with no HTTP parsing, as nginx's proxy does.
 */
#ifndef GW_TUNNEL_H
#define GW_TUNNEL_H

#include "core/worker-t.h"
#include "request-t.h"

/*
 * The upstream answered req with 101 and its head is parsed; [rest, rest+n)
 * of buffer bid are the bytes that came after the head (already the new
 * protocol). Forward the 101 head to the client, then turn both connections
 * into a tunnel. req belongs to the tunnel from now on and is ended (logged,
 * freed) with it; on failure at once, both connections closed. The caller
 * keeps its own reference to bid.
 */
void gw_tunnel_start(gw_worker_t *w, gw_http_req_t *req, const char *rest, uint32_t n, uint32_t bid);

/* A fast stop: free the state of the tunnels of configuration wc (sockets go with the worker). */
void gw_tunnel_exit_worker(gw_worker_t *w, gw_wcycle_t *wc);

#endif
