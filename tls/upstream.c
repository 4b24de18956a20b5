/*
 * TLS to upstreams (proxy_pass https://): a client context per location
 * built at configuration time, and the client side of the same layer the
 * listeners use (conn.c), started once the TCP connect completes. The
 * record layer stays in userspace here; a pooled keep-alive connection
 * keeps its TLS session, so reuse costs no handshake.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "internal.h"
#include "tls.h"

/*
 * proxy_ssl_session_reuse: each worker keeps the latest session per
 * location (keyed by the build's `gen`, so a reload never offers a session
 * made under other settings) and offers it on the next new connection: a
 * resumed handshake instead of a full one when the pool has no idle
 * connection. Plain per-thread state: nothing shared, nothing locked.
 */
#define SESSION_SLOTS 16

static __thread struct session_slot {
    uint64_t key;
    WOLFSSL_SESSION *sess;
} sessions[SESSION_SLOTS];
static __thread uint32_t session_next; /* round-robin victim when full */

static struct session_slot *session_find(uint64_t key)
{
    for (uint32_t i = 0; i < SESSION_SLOTS; i++)
        if (sessions[i].key == key)
            return &sessions[i];
    return NULL;
}

void gw_tls_session_save(gw_tls_conn_t *t)
{
    struct session_slot *slot;
    WOLFSSL_SESSION *sess;

    if (t->session_key == 0)
        return;
    t->session_saved = 1;
    sess = wolfSSL_get1_session(t->ssl);
    if (sess == NULL)
        return;
    slot = session_find(t->session_key);
    if (slot == NULL) {
        slot = &sessions[session_next++ % SESSION_SLOTS];
        slot->key = t->session_key;
    }
    if (slot->sess)
        wolfSSL_SESSION_free(slot->sess);
    slot->sess = sess;
}

void gw_tls_proxy_thread_exit(void)
{
    for (uint32_t i = 0; i < SESSION_SLOTS; i++) {
        if (sessions[i].sess)
            wolfSSL_SESSION_free(sessions[i].sess);
        sessions[i].sess = NULL;
        sessions[i].key = 0;
    }
}

static atomic_uint_fast64_t build_gen;

int gw_tls_proxy_build(gw_tls_proxy_conf_t *conf, const gw_conf_node_t *where, gw_conf_err_t *err)
{
    gw_conf_node_t at_trusted = {.file = conf->trusted_file, .line = conf->trusted_line};
    gw_conf_node_t at_cert = {.file = conf->cert_file, .line = conf->cert_line};
    gw_conf_node_t at_key = {.file = conf->key_file, .line = conf->key_line};
    WOLFSSL_CTX *ctx;
    int min, max;

    if (conf->ctx)
        return 0;
    if (gw_tls_global_init() < 0)
        return gw_conf_error(err, where, "wolfSSL_Init() failed");
    if (conf->verify == 1 && conf->trusted == NULL)
        return gw_conf_error(err, where, "no proxy_ssl_trusted_certificate for proxy_ssl_verify");
    ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (ctx == NULL)
        return gw_conf_error(err, where, "SSL_CTX_new() failed");
    conf->ctx = ctx;
    min = (conf->protocols & GW_TLS_V1_2) ? TLS1_2_VERSION : TLS1_3_VERSION;
    max = (conf->protocols & GW_TLS_V1_3) ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!(conf->protocols & (GW_TLS_V1_2 | GW_TLS_V1_3)) ||
        wolfSSL_CTX_set_min_proto_version(ctx, min) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_max_proto_version(ctx, max) != WOLFSSL_SUCCESS)
        return gw_conf_error(err, where, "no protocol of \"proxy_ssl_protocols\" is supported (TLSv1.2 and TLSv1.3 are)");
    if (conf->ciphers && wolfSSL_CTX_set_cipher_list(ctx, conf->ciphers) != WOLFSSL_SUCCESS)
        return gw_conf_error(err, where, "SSL_CTX_set_cipher_list(\"%s\") failed", conf->ciphers);
    if (conf->trusted &&
        wolfSSL_CTX_load_verify_locations(ctx, conf->trusted, NULL) != WOLFSSL_SUCCESS)
        return gw_conf_error(err, &at_trusted, "cannot load trusted certificate \"%s\"", conf->trusted);
    if (conf->cert) {
        if (conf->key == NULL)
            return gw_conf_error(err, &at_cert, "no \"proxy_ssl_certificate_key\" is defined for certificate \"%s\"",
                                 conf->cert);
        if (wolfSSL_CTX_use_certificate_chain_file(ctx, conf->cert) != WOLFSSL_SUCCESS)
            return gw_conf_error(err, &at_cert, "cannot load certificate \"%s\"", conf->cert);
        if (wolfSSL_CTX_use_PrivateKey_file(ctx, conf->key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)
            return gw_conf_error(err, &at_key, "cannot load certificate key \"%s\"", conf->key);
    }
    /* nginx's proxy_ssl_verify off: the handshake succeeds whatever the certificate. */
    wolfSSL_CTX_set_verify(ctx, conf->verify == 1 ? WOLFSSL_VERIFY_PEER : WOLFSSL_VERIFY_NONE, NULL);
    if (conf->verify == 1)
        wolfSSL_CTX_set_verify_depth(ctx, conf->verify_depth);
    gw_tls_ctx_set_io(ctx);
    conf->gen = atomic_fetch_add(&build_gen, 1) + 1;
    return 0;
}

void gw_tls_proxy_free(gw_tls_proxy_conf_t *conf)
{
    if (conf->ctx)
        wolfSSL_CTX_free(conf->ctx);
    conf->ctx = NULL;
}

int gw_tls_connect(gw_worker_t *w, gw_conn_t *c, const gw_tls_proxy_conf_t *conf, const char *host, uint32_t len)
{
    char name[256];
    gw_tls_conn_t *t;

    /* The name: proxy_ssl_name, else proxy_pass's host without its port. */
    if (conf->name) {
        snprintf(name, sizeof(name), "%s", conf->name);
    } else {
        const char *end = host + len, *colon = memrchr(host, ':', len);

        if (colon && !memchr(colon, ']', (size_t)(end - colon)))
            end = colon;
        if (len && host[0] == '[') { /* an IPv6 literal: no brackets in the name */
            host++;
            end = memchr(host, ']', (size_t)(end - host)) ? (const char *)memchr(host, ']', (size_t)(end - host)) : end;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(end - host), host);
    }
    t = gw_tls_conn_new(w, c, conf->ctx);
    if (t == NULL)
        return -ENOMEM;
    t->client = 1;
    t->state = GW_TLS_HANDSHAKE;
    if (conf->server_name == 1 && name[0])
        wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, name, (unsigned short)strlen(name));
    if (conf->verify == 1 && name[0])
        wolfSSL_check_domain_name(t->ssl, name);
    if (conf->session_reuse == 1) {
        struct session_slot *slot = session_find(conf->gen);

        t->session_key = conf->gen;
        if (slot && slot->sess)
            wolfSSL_set_session(t->ssl, slot->sess);
    }
    gw_tls_conn_drive(t); /* the ClientHello goes to the wire */
    return 0;
}
