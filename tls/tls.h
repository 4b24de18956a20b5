/*
 * TLS termination under a connection (a gw_conn_layer_t): the handshake in
 * wolfSSL over the ring's buffers, then the record layer either in wolfSSL
 * (userspace) or in the kernel (kTLS), invisible to the connection's owner.
 *
 * Return convention (STYLE.md 7): -errno or -1 with a message, >= 0 on success.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>

#include "core/conf-t.h"
#include "tls-t.h"

/* Once per process, before any context is built. */
int gw_tls_global_init(void);

/*
 * Build conf->ctx from the settings (certificate chain, key, protocols,
 * ciphers, ALPN, session resumption). On failure fills err with nginx's
 * words naming the file ("cannot load certificate \"x\" ... in FILE:LINE")
 * and returns -1. `where` is the server, for errors not tied to a directive.
 */
int gw_tls_conf_build(gw_tls_conf_t *conf, const gw_tls_listen_t *lst, const gw_conf_node_t *where,
                      gw_conf_err_t *err);
void gw_tls_conf_free(gw_tls_conf_t *conf);

/* Probe once whether the kernel can take the record layer (TCP_ULP "tls"). 0 or -ENOENT. */
int gw_tls_ktls_probe(void);
/* Say at info which record layer ssl_ktls on gets (once per process, from a worker: the log is open by then). */
void gw_tls_ktls_log_startup(void);

/* Let every context of a listening address switch by SNI (after each was built). */
void gw_tls_listen_setup(gw_tls_listen_t *lst, gw_tls_conf_t *conf);

/*
 * Put TLS under a freshly accepted connection (its owner's ops already set).
 * The owner hears from the connection only after the handshake, and then
 * only plaintext. On failure the connection is closed and -errno returned.
 */
int gw_tls_attach(gw_worker_t *w, gw_conn_t *c, const gw_tls_listen_t *lst);

/*
 * Upstream TLS: build conf->ctx (trusted certificates, client certificate,
 * protocols, ciphers). -1 with err naming the file on failure.
 */
int gw_tls_proxy_build(gw_tls_proxy_conf_t *conf, const gw_conf_node_t *where, gw_conf_err_t *err);
void gw_tls_proxy_free(gw_tls_proxy_conf_t *conf);
/* A worker lets go of the upstream sessions it kept (proxy_ssl_session_reuse). */
void gw_tls_proxy_thread_exit(void);
/* Free what wolfSSL keeps per thread (the ECC point cache); a worker calls it when done with a configuration. */
void gw_tls_thread_exit(void);

/*
 * Start TLS on a freshly connected upstream connection c (its owner's ops
 * set, its request possibly queued already: it waits for the handshake).
 * `host` (len bytes) is proxy_pass's host, for SNI and verification when
 * proxy_ssl_name is unset. A failed handshake reaches the owner as
 * ops->on_eof(-EPROTO). 0, or -errno (c untouched).
 */
int gw_tls_connect(gw_worker_t *w, gw_conn_t *c, const gw_tls_proxy_conf_t *conf, const char *host, uint32_t len);

/* Has any of the owner's output on c been turned into records (so c->out no longer starts where the owner began)? */
int gw_tls_encoded(const gw_conn_t *c);
/* Start counting again (a pooled connection taken for a new request). */
void gw_tls_encoded_reset(gw_conn_t *c);

/* Is c a TLS connection (any mode)? And its negotiated parameters (NULL before the handshake or without TLS). */
int gw_tls_is_tls(const gw_conn_t *c);
const char *gw_tls_protocol(const gw_conn_t *c);    /* "TLSv1.2", "TLSv1.3" */
const char *gw_tls_cipher(const gw_conn_t *c);      /* OpenSSL's name, as nginx's $ssl_cipher */
const char *gw_tls_server_name(const gw_conn_t *c); /* SNI, NULL if none */
const char *gw_tls_alpn(const gw_conn_t *c);        /* negotiated ALPN protocol, NULL if none */
int gw_tls_session_reused(const gw_conn_t *c);      /* the handshake resumed a session */

#endif
