/*
 * wolfSSL contexts from the ssl_* settings: one per server, built by the
 * main thread when the configuration loads (so a bad certificate is a `-t`
 * error) and shared read-only by the workers. SNI switches a connection to
 * the named server's context from wolfSSL's servername callback.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "core/conf.h"
#include "internal.h"
#include "tls.h"

int gw_tls_global_init(void)
{
    static int done;

    if (done)
        return 0;
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return -1;
    done = 1;
    return 0;
}

/* Why a PEM file could not be used: the system's reason when it cannot be read, else a parse failure. */
static const char *file_reason(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(buf, size, "BIO_new_file() failed (%s)", strerror(errno));
        return buf;
    }
    fclose(f);
    return "PEM_read_bio failed (not a PEM file, or nothing usable in it)";
}

/*
 * OpenSSL's ssl_ciphers leaves TLS 1.3 suites alone; wolfSSL's cipher list
 * replaces them too. Keep nginx's meaning: add the TLS 1.3 suites when the
 * list names none - in front: with them after the TLS 1.2 ones, wolfSSL 5.5.4
 * fails a client offering both versions ("record layer version error").
 */
static int set_ciphers(WOLFSSL_CTX *ctx, const char *list)
{
    static const char tls13[] = "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256";
    char buf[2048];

    if (strstr(list, "TLS13-") || strstr(list, "TLS_AES") || strstr(list, "TLS_CHACHA"))
        return wolfSSL_CTX_set_cipher_list(ctx, list);
    if ((size_t)snprintf(buf, sizeof(buf), "%s:%s", tls13, list) >= sizeof(buf))
        return WOLFSSL_FAILURE;
    return wolfSSL_CTX_set_cipher_list(ctx, buf);
}

int gw_tls_conf_build(gw_tls_conf_t *conf, const gw_tls_listen_t *lst, const gw_conf_node_t *where,
                      gw_conf_err_t *err)
{
    gw_conf_node_t at_cert = {.file = conf->cert_file, .line = conf->cert_line};
    gw_conf_node_t at_key = {.file = conf->key_file, .line = conf->key_line};
    WOLFSSL_CTX *ctx;
    char why[256];
    int min, max;

    if (conf->ctx)
        return 0;
    if (gw_tls_global_init() < 0)
        return gw_conf_error(err, where, "wolfSSL_Init() failed");
    if (conf->cert == NULL)
        return gw_conf_error(err, where, "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive");
    if (conf->key == NULL)
        return gw_conf_error(err, &at_cert, "no \"ssl_certificate_key\" is defined for certificate \"%s\"",
                             conf->cert);
    min = (conf->protocols & GW_TLS_V1_2) ? TLS1_2_VERSION : TLS1_3_VERSION;
    max = (conf->protocols & GW_TLS_V1_3) ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!(conf->protocols & (GW_TLS_V1_2 | GW_TLS_V1_3)))
        return gw_conf_error(err, where, "no protocol of \"ssl_protocols\" is supported (TLSv1.2 and TLSv1.3 are)");
    ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (ctx == NULL)
        return gw_conf_error(err, where, "SSL_CTX_new() failed");
    conf->ctx = ctx;
    if (wolfSSL_CTX_set_min_proto_version(ctx, min) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_max_proto_version(ctx, max) != WOLFSSL_SUCCESS)
        return gw_conf_error(err, where, "cannot set the protocol versions of \"ssl_protocols\"");
    if (wolfSSL_CTX_use_certificate_chain_file(ctx, conf->cert) != WOLFSSL_SUCCESS)
        return gw_conf_error(err, &at_cert, "cannot load certificate \"%s\": %s", conf->cert,
                             file_reason(conf->cert, why, sizeof(why)));
    if (wolfSSL_CTX_use_PrivateKey_file(ctx, conf->key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
        return gw_conf_error(err, &at_key, "cannot load certificate key \"%s\": %s", conf->key,
                             file_reason(conf->key, why, sizeof(why)));
    if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)
        return gw_conf_error(err, &at_key,
                             "SSL_CTX_use_PrivateKey(\"%s\") failed (key values mismatch with certificate \"%s\")",
                             conf->key, conf->cert);
    if (conf->ciphers && set_ciphers(ctx, conf->ciphers) != WOLFSSL_SUCCESS)
        return gw_conf_error(err, where, "SSL_CTX_set_cipher_list(\"%s\") failed", conf->ciphers);
    if (conf->prefer_server == 1)
        wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
    if (conf->session_cache == 0)
        wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
    if (conf->session_tickets == 0) {
        wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_NO_TICKET);
        wolfSSL_CTX_no_ticket_TLSv13(ctx);
    }
    wolfSSL_CTX_set_timeout(ctx, (unsigned)(conf->session_timeout / 1000));
    gw_tls_ctx_set_io(ctx);
    (void)lst;
    return 0;
}

void gw_tls_listen_setup(gw_tls_listen_t *lst, gw_tls_conf_t *conf)
{
    if (conf->ctx == NULL)
        return;
    /* The connection knows its listening address (conn.c); no argument needed. */
    wolfSSL_CTX_set_servername_callback(conf->ctx, gw_tls_conn_sni);
}

void gw_tls_conf_free(gw_tls_conf_t *conf)
{
    if (conf->ctx)
        wolfSSL_CTX_free(conf->ctx);
    conf->ctx = NULL;
}

/* wolfSSL (built with FP_ECC) caches ECC points per thread; each worker frees its own. */
void gw_tls_thread_exit(void)
{
    wc_ecc_fp_free();
}
