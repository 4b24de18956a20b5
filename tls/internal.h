/* What tls/'s files share among themselves (wolfSSL types in the open). */
#ifndef GW_TLS_INTERNAL_H
#define GW_TLS_INTERNAL_H

#include <stdint.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "core/conn-t.h"
#include "tls-t.h"

/* Record-layer modes of a connection, in the order they happen. */
typedef enum gw_tls_state {
    GW_TLS_NEW,          /* nothing received yet: TLS or plain HTTP? */
    GW_TLS_HANDSHAKE,    /* wolfSSL_accept until it completes */
    GW_TLS_KTLS_PENDING, /* handshake done, kTLS wanted: waiting for the recv to stop and the wire to drain */
    GW_TLS_DATA,         /* record layer in wolfSSL (userspace) */
    GW_TLS_KTLS,         /* record layer in the kernel: plain sends and receives */
    GW_TLS_PLAIN_HTTP,   /* answering nginx's 400 in plaintext, then closing */
    GW_TLS_FAILED,       /* handshake failed: flushing the alert, then closing */
    GW_TLS_CLOSED,       /* the peer sent close_notify */
} gw_tls_state_t;

typedef struct gw_tls_conn {
    WOLFSSL *ssl;
    gw_worker_t *w;
    gw_conn_t *c;
    const gw_tls_listen_t *lst;
    const gw_tls_conf_t *conf; /* the default server's, or the one SNI chose */
    const char *in;            /* ciphertext received and not yet read by wolfSSL */
    uint32_t in_len;
    uint32_t rec_left;         /* bytes left of the record wolfSSL is reading (kTLS needs a boundary) */
    uint8_t rec_hdr[5];        /* a record header being read across buffers */
    uint8_t rec_hdr_len;
    uint8_t state;             /* gw_tls_state_t */
    uint8_t shutdown_sent;     /* close_notify queued */
    uint8_t logged;            /* the handshake's end was logged already */
    uint8_t client;            /* we are the client (an upstream connection) */
    uint8_t encoded;           /* some of the owner's output became records (it left c->out) */
    uint8_t session_saved;     /* client: the session went to the worker's cache (upstream.c) */
    uint64_t session_key;      /* client: the cache key (gw_tls_proxy_conf_t.gen), 0 = no reuse */
    const char *protocol, *cipher; /* filled once the handshake is done */
} gw_tls_conn_t;

/* conn.c */
/* TLS state for c with a new WOLFSSL from ctx, the user-space layer attached; NULL when out of memory. */
gw_tls_conn_t *gw_tls_conn_new(gw_worker_t *w, gw_conn_t *c, WOLFSSL_CTX *ctx);
/* Run the handshake (or read) as far as the input allows. */
void gw_tls_conn_drive(gw_tls_conn_t *t);
void gw_tls_ctx_set_io(WOLFSSL_CTX *ctx);
int gw_tls_conn_sni(WOLFSSL *ssl, int *ret, void *arg);
void gw_tls_handshake_log(const gw_tls_conn_t *t, const char *what);

/* upstream.c: keep a client connection's session for the next connection to the same upstream. */
void gw_tls_session_save(gw_tls_conn_t *t);

/* ktls.c: the kernel takes the record layer. 0 when installed, -errno when not (stay in userspace). */
int gw_tls_ktls_install(gw_tls_conn_t *t);
/* After TLS_RX, a receive failed with EIO: a non-data record is waiting. What the owner should hear (0 = orderly EOF, -errno). */
int gw_tls_ktls_control_record(gw_tls_conn_t *t);
/* Has no connection found TCP_ULP "tls" missing yet (probe.c)? */
int gw_tls_ktls_usable(void);
/* Can the kernel do this connection's cipher? */
int gw_tls_ktls_cipher_ok(WOLFSSL *ssl);
/* Probe at startup whether the kernel has TLS (info log either way). 0 or -ENOENT. */
int gw_tls_ktls_probe(void);
/* Log the mode once per process (info). */
void gw_tls_ktls_log_mode(int installed, int err);

#endif
