/* Types of TLS termination (see tls.h). Includes nothing from http/. */
#ifndef GW_TLS_T_H
#define GW_TLS_T_H

#include <stdint.h>

#include "core/conn-t.h"

/* ssl_protocols bits. */
enum {
    GW_TLS_V1 = 1u << 0,   /* accepted in the configuration, never offered (see conf_tls.c) */
    GW_TLS_V1_1 = 1u << 1, /* ditto */
    GW_TLS_V1_2 = 1u << 2,
    GW_TLS_V1_3 = 1u << 3,
};

/*
 * One server's TLS settings (http or server level; a server inherits what
 * it leaves unset). Unset: NULL / -1 / UINT64_MAX. `ctx` is the wolfSSL
 * context built from them at configuration time, shared read-only by every
 * worker (wolfSSL contexts are safe to share once set up).
 */
typedef struct gw_tls_conf {
    char *cert; /* ssl_certificate, resolved against the prefix */
    char *key;  /* ssl_certificate_key */
    const char *cert_file, *key_file; /* where they were written (errors name it) */
    uint32_t cert_line, key_line;
    int protocols;       /* GW_TLS_V* mask */
    char *ciphers;       /* ssl_ciphers, OpenSSL syntax */
    int prefer_server;   /* ssl_prefer_server_ciphers */
    int ktls;            /* ssl_ktls */
    int session_tickets; /* ssl_session_tickets */
    int session_cache;   /* 0 = off/none, 1 = builtin/shared */
    uint64_t session_timeout; /* ms */
    void *ctx;           /* WOLFSSL_CTX *, NULL until built */
} gw_tls_conf_t;

/*
 * A TLS listening address: its default server's settings, and how to find
 * another server's by the name the client sent (SNI). The owner (http/)
 * supplies `select` and `plain_http` so that this layer knows no HTTP.
 */
typedef struct gw_tls_listen {
    const gw_tls_conf_t *dflt;
    /* The settings of the server named name[0..len), or NULL for the default. */
    const gw_tls_conf_t *(*select)(const void *arg, const char *name, uint32_t len);
    const void *arg;
    /* The client spoke plain HTTP: queue the answer on c (plaintext) and finish c. */
    void (*plain_http)(gw_worker_t *w, gw_conn_t *c);
} gw_tls_listen_t;

/*
 * TLS to an upstream (proxy_pass https://), from the proxy_ssl_* settings of
 * a location merged with its server's and the http block's. Unset: NULL/-1.
 */
typedef struct gw_tls_proxy_conf {
    int verify;       /* proxy_ssl_verify (off) */
    int verify_depth; /* proxy_ssl_verify_depth (1) */
    char *trusted;    /* proxy_ssl_trusted_certificate */
    const char *trusted_file;
    uint32_t trusted_line;
    int server_name;  /* proxy_ssl_server_name (off): send SNI */
    char *name;       /* proxy_ssl_name: SNI and the name verified (default: proxy_pass's host) */
    int protocols;    /* proxy_ssl_protocols */
    char *ciphers;    /* proxy_ssl_ciphers */
    char *cert, *key; /* proxy_ssl_certificate / _key: a client certificate */
    const char *cert_file, *key_file;
    uint32_t cert_line, key_line;
    int session_reuse; /* proxy_ssl_session_reuse (on) */
    void *ctx;         /* WOLFSSL_CTX *, built when a location proxies over https */
    uint64_t gen;      /* unique per build: keys the workers' session caches (upstream.c) */
} gw_tls_proxy_conf_t;

#endif
