/*
 * TLS under a connection (a gw_conn_layer_t, see core/conn-t.h).
 *
 * Nothing here touches the socket. wolfSSL's I/O callbacks read the bytes the
 * worker's multishot recv already delivered (io_recv) and append records to
 * the connection's wire queue (io_send), which the worker sends with the
 * rest of its batch. So a slow client costs a slot, never a thread.
 *
 * States (gw_tls_state_t) and what moves them:
 *   NEW          first byte 0x16 (handshake record) -> HANDSHAKE; anything else -> PLAIN_HTTP
 *   HANDSHAKE    wolfSSL_accept done -> DATA, or KTLS_PENDING when ssl_ktls on and the cipher allows;
 *                failure -> FAILED; EOF or the owner's timeout (client_header_timeout) -> closed
 *   KTLS_PENDING the recv stopped, the wire drained, at a record boundary -> KTLS (layer switched to
 *                ktls_layer: plain I/O), else -> DATA
 *   DATA         close_notify -> CLOSED; the owner closes
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/gw.h"
#include "core/log.h"
#include "core/stats.h"
#include "internal.h"
#include "tls.h"

#define RECORD_MAX 16384
/* Plaintext encrypted per flush: enough for a few full records, while the
 * rest stays in c->out where the owner's backpressure sees it. */
#define ENCODE_BUDGET (64 * 1024)

static const gw_conn_layer_t user_layer, ktls_layer;

static void peer_text(const gw_conn_t *c, char *buf, size_t size)
{
    if (c->peer.family == 0 || inet_ntop(c->peer.family, c->peer.addr, buf, (socklen_t)size) == NULL)
        snprintf(buf, size, "-");
}

/* Follow the record framing of everything handed to wolfSSL: the kernel can take over only at a boundary. */
static void track_records(gw_tls_conn_t *t, const uint8_t *p, uint32_t n)
{
    while (n) {
        if (t->rec_left) {
            uint32_t k = n < t->rec_left ? n : t->rec_left;

            t->rec_left -= k;
            p += k;
            n -= k;
            continue;
        }
        t->rec_hdr[t->rec_hdr_len++] = *p++;
        n--;
        if (t->rec_hdr_len == 5) {
            t->rec_left = (uint32_t)t->rec_hdr[3] << 8 | t->rec_hdr[4];
            t->rec_hdr_len = 0;
        }
    }
}

/* wolfSSL wants ciphertext: give what the last recv brought, or "would block". */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    gw_tls_conn_t *t = ctx;
    uint32_t n;

    (void)ssl;
    if (t->in_len == 0 || sz <= 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    n = (uint32_t)sz < t->in_len ? (uint32_t)sz : t->in_len;
    memcpy(buf, t->in, n);
    track_records(t, (const uint8_t *)t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

/* wolfSSL made records: queue them for the wire (sent with the worker's next batch). */
static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    gw_tls_conn_t *t = ctx;
    char *block;

    (void)ssl;
    if (sz <= 0)
        return 0;
    block = malloc((size_t)sz);
    if (block == NULL)
        return WOLFSSL_CBIO_ERR_GENERAL;
    memcpy(block, buf, (size_t)sz);
    gw_conn_send_wire(t->w, t->c, block, block, (uint32_t)sz);
    return sz;
}

void gw_tls_ctx_set_io(WOLFSSL_CTX *ctx)
{
    wolfSSL_CTX_SetIORecv(ctx, io_recv);
    wolfSSL_CTX_SetIOSend(ctx, io_send);
}

/* wolfSSL's servername callback: switch to the named server's certificate. */
int gw_tls_conn_sni(WOLFSSL *ssl, int *ret, void *arg)
{
    gw_tls_conn_t *t = wolfSSL_GetIOReadCtx(ssl);
    const char *name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    const gw_tls_conf_t *conf;

    (void)ret;
    (void)arg;
    if (t == NULL || name == NULL || *name == '\0' || t->lst->select == NULL)
        return 0;
    conf = t->lst->select(t->lst->arg, name, (uint32_t)strlen(name));
    if (conf && conf->ctx && conf != t->conf) {
        wolfSSL_set_SSL_CTX(ssl, conf->ctx);
        t->conf = conf;
    }
    return 0; /* an unknown name keeps the default server's certificate, as in nginx */
}

void gw_tls_handshake_log(const gw_tls_conn_t *t, const char *what)
{
    char peer[64];

    peer_text(t->c, peer, sizeof(peer));
    gw_log(GW_LOG_INFO, "%s while SSL handshaking, client: %s", what, peer);
}

/* OpenSSL's names for the TLS 1.3 suites (nginx's $ssl_cipher); TLS 1.2 names are the same in both. */
static const char *openssl_cipher_name(const char *name)
{
    static const char *const map[][2] = {
        {"TLS13-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256"},
        {"TLS13-AES256-GCM-SHA384", "TLS_AES_256_GCM_SHA384"},
        {"TLS13-CHACHA20-POLY1305-SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
        {"TLS13-AES128-CCM-SHA256", "TLS_AES_128_CCM_SHA256"},
    };

    for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(name, map[i][0]) == 0)
            return map[i][1];
    return name;
}

/* ---- userspace record layer ---- */

/* Hand plaintext to the owner: the buffer's reference goes with it. */
static void deliver(gw_tls_conn_t *t, int bid, uint32_t len)
{
    gw_worker_t *w = t->w;

    if (len == 0 || (t->c->flags & GW_CONN_CLOSING)) {
        gw_buf_unref(&w->bufs, (uint32_t)bid);
        return;
    }
    t->c->ops->on_data(w, t->c, gw_buf_data(&w->bufs, (uint32_t)bid), len, (uint32_t)bid);
}

/*
 * Decrypt everything wolfSSL can make of the input into spare buffers and
 * hand it to the owner, until wolfSSL would block (all input consumed).
 */
static void read_plain(gw_tls_conn_t *t)
{
    gw_worker_t *w = t->w;
    gw_conn_t *c = t->c;
    uint32_t off = 0;
    int bid = -1;

    for (;;) {
        int n, e;

        if (c->flags & GW_CONN_CLOSING)
            break;
        if (bid < 0) {
            bid = gw_buf_spare(&w->bufs);
            if (bid < 0) {
                gw_log(GW_LOG_WARN, "worker %d: out of TLS plaintext buffers, closing a connection", w->id);
                gw_conn_close(w, c);
                return;
            }
            off = 0;
        }
        n = wolfSSL_read(t->ssl, gw_buf_data(&w->bufs, (uint32_t)bid) + off, (int)(w->bufs.size - off));
        if (n > 0) {
            off += (uint32_t)n;
            if (off == w->bufs.size) {
                deliver(t, bid, off);
                bid = -1;
            }
            continue;
        }
        e = wolfSSL_get_error(t->ssl, n);
        if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
            break;
        deliver(t, bid, off);
        bid = -1;
        if (c->flags & GW_CONN_CLOSING)
            return;
        if (e == WOLFSSL_ERROR_ZERO_RETURN) {
            t->state = GW_TLS_CLOSED; /* close_notify: an orderly end of the client's data */
            c->ops->on_eof(w, c, 0);
        } else {
            char peer[64];

            peer_text(c, peer, sizeof(peer));
            gw_log(GW_LOG_INFO, "SSL_read() failed (SSL: %d %s) while reading, client: %s", e,
                   wolfSSL_ERR_reason_error_string((unsigned long)e), peer);
            c->ops->on_eof(w, c, -EPROTO);
        }
        return;
    }
    if (bid >= 0)
        deliver(t, bid, off);
    /* By the first response a TLS 1.3 server's ticket has come before it. */
    if (t->client && off && !t->session_saved && !(c->flags & GW_CONN_CLOSING))
        gw_tls_session_save(t);
}

/* Encrypt up to ENCODE_BUDGET bytes of the owner's output into records on the wire. */
static void encrypt_out(gw_tls_conn_t *t)
{
    gw_worker_t *w = t->w;
    gw_conn_t *c = t->c;
    uint32_t budget = ENCODE_BUDGET;
    char stage[RECORD_MAX];

    while (c->out.head && budget) {
        const gw_seg_t *s = c->out.head;
        const char *p;
        uint32_t k = 0;
        int n;

        if (s->len >= RECORD_MAX) {
            p = s->data; /* a big piece makes its own full records */
            k = RECORD_MAX;
        } else {
            /* Gather small pieces (head, chunks) into one record rather than one record each. */
            for (; s && k < RECORD_MAX; s = s->next) {
                uint32_t take = gw_min(s->len, (uint32_t)RECORD_MAX - k);

                memcpy(stage + k, s->data, take);
                k += take;
            }
            p = stage;
        }
        n = wolfSSL_write(t->ssl, p, (int)k);
        if (n <= 0) {
            char peer[64];

            peer_text(c, peer, sizeof(peer));
            gw_log(GW_LOG_INFO, "SSL_write() failed (SSL: %d) while sending, client: %s",
                   wolfSSL_get_error(t->ssl, n), peer);
            gw_conn_close(w, c);
            return;
        }
        gw_segq_consume(&c->out, &w->segs, &w->bufs, (uint32_t)n);
        t->encoded = 1;
        budget = (uint32_t)n >= budget ? 0 : budget - (uint32_t)n;
    }
    /* The owner is finishing: end the TLS session properly (close_notify) before the close. */
    if (c->out.head == NULL && (c->flags & GW_CONN_CLOSE_ON_DRAIN) && !t->shutdown_sent) {
        t->shutdown_sent = 1;
        wolfSSL_shutdown(t->ssl);
    }
}

/* ---- handshake ---- */

/* A completed handshake, counted by version and by who does the record layer (core/stats.h). */
static void count_handshake(gw_tls_conn_t *t, int mode)
{
    int v = wolfSSL_version(t->ssl) == TLS1_3_VERSION ? GW_TLS_V13 : GW_TLS_V12;

    gw_stat_inc(&t->w->st.tls_handshakes[v][mode]);
}

static void count_failure(gw_worker_t *w)
{
    gw_stat_inc(&w->st.tls_failures);
}

static void use_userspace(gw_tls_conn_t *t)
{
    t->state = GW_TLS_DATA;
    count_handshake(t, GW_TLS_USERSPACE);
}

static void handshake_done(gw_tls_conn_t *t)
{
    gw_worker_t *w = t->w;

    t->protocol = wolfSSL_get_version(t->ssl);
    t->cipher = openssl_cipher_name(wolfSSL_get_cipher_name(t->ssl));
    if (t->conf->ktls == 1 && gw_tls_ktls_cipher_ok(t->ssl) && gw_tls_ktls_usable()) {
        /* The kernel can take RX only once no recv of ours can still deliver
         * raw records: stop it, and finish the switch from encode (try_ktls). */
        t->state = GW_TLS_KTLS_PENDING;
        gw_conn_recv_stop(w, t->c);
        gw_conn_kick(w, t->c);
        return;
    }
    use_userspace(t);
}

static void handshake_failed(gw_tls_conn_t *t, int e)
{
    char why[160];

    t->state = GW_TLS_FAILED;
    snprintf(why, sizeof(why), "SSL_do_handshake() failed (SSL: %d %s)", e,
             wolfSSL_ERR_reason_error_string((unsigned long)e));
    if (t->client) {
        /* nginx logs an upstream's failed handshake as an error; the owner
         * answers it (502, next upstream) as any failed connection. */
        gw_log(GW_LOG_ERR, "%s while SSL handshaking to upstream", why);
        t->c->ops->on_eof(t->w, t->c, -EPROTO);
        return;
    }
    count_failure(t->w);
    gw_tls_handshake_log(t, why);
    gw_conn_finish(t->w, t->c, 0); /* send the alert wolfSSL queued, then close */
}

static void drive(gw_tls_conn_t *t)
{
    if (t->state == GW_TLS_HANDSHAKE) {
        int r = t->client ? wolfSSL_connect(t->ssl) : wolfSSL_accept(t->ssl);

        if (r != WOLFSSL_SUCCESS) {
            int e = wolfSSL_get_error(t->ssl, r);

            if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE)
                handshake_failed(t, e);
            return;
        }
        if (t->client) {
            /* Upstream connections keep the record layer in userspace. */
            t->protocol = wolfSSL_get_version(t->ssl);
            t->cipher = openssl_cipher_name(wolfSSL_get_cipher_name(t->ssl));
            t->state = GW_TLS_DATA;
            gw_conn_kick(t->w, t->c); /* the request waiting in c->out can go now */
        } else {
            handshake_done(t);
        }
    }
    read_plain(t);
}

void gw_tls_conn_drive(gw_tls_conn_t *t)
{
    drive(t);
}

/* ---- the layer ---- */

static void tls_on_data(gw_worker_t *w, gw_conn_t *c, char *data, uint32_t len, uint32_t bid)
{
    gw_tls_conn_t *t = c->layer_data;

    if (t->state == GW_TLS_NEW) {
        if ((uint8_t)data[0] != 0x16) {
            /* Not a TLS handshake record: a plain HTTP client (nginx answers it with a 400). */
            t->state = GW_TLS_PLAIN_HTTP;
            count_failure(w);
            gw_tls_handshake_log(t, "client sent plain HTTP request to HTTPS port");
            gw_buf_unref(&w->bufs, bid);
            t->lst->plain_http(w, c);
            return;
        }
        t->state = GW_TLS_HANDSHAKE;
    }
    if (t->state == GW_TLS_HANDSHAKE || t->state == GW_TLS_DATA || t->state == GW_TLS_KTLS_PENDING) {
        t->in = data;
        t->in_len = len;
        drive(t);
        t->in_len = 0; /* left over only when the connection closed meanwhile */
    }
    gw_buf_unref(&w->bufs, bid);
}

static void tls_on_eof(gw_worker_t *w, gw_conn_t *c, int err)
{
    gw_tls_conn_t *t = c->layer_data;

    switch (t->state) {
    case GW_TLS_DATA:
    case GW_TLS_KTLS_PENDING:
    case GW_TLS_CLOSED:
        c->ops->on_eof(w, c, err); /* no close_notify: still an end of input, as nginx sees it */
        return;
    case GW_TLS_HANDSHAKE:
        if (t->client) {
            c->ops->on_eof(w, c, err ? err : -ECONNRESET);
            return;
        }
        gw_tls_handshake_log(t, "peer closed connection in SSL handshake");
        t->logged = 1;
        break;
    default:
        break;
    }
    gw_conn_close(w, c);
}

/* Splice the owner's plaintext onto the wire as it is (the plain-HTTP answer). */
static void pass_plain(gw_worker_t *w, gw_conn_t *c)
{
    while (c->out.head) {
        gw_seg_t *s = c->out.head;

        c->out.head = s->next;
        c->out.bytes -= s->len;
        c->out.count--;
        gw_segq_push(&c->wire, s);
    }
    c->out.tailp = &c->out.head;
}

static void try_ktls(gw_tls_conn_t *t)
{
    gw_worker_t *w = t->w;
    gw_conn_t *c = t->c;
    int ret;

    if (c->wire.head || (c->flags & GW_CONN_RECV_ARMED)) {
        gw_conn_kick(w, c); /* records still to send, or the recv's last completion to come */
        return;
    }
    if (t->rec_left || t->rec_hdr_len || wolfSSL_pending(t->ssl)) {
        /* Half a record was already read from the socket: the kernel cannot start mid-record. */
        use_userspace(t);
        gw_conn_recv_start(w, c);
        encrypt_out(t);
        return;
    }
    ret = gw_tls_ktls_install(t);
    if (ret < 0) {
        use_userspace(t);
        gw_conn_recv_start(w, c);
        encrypt_out(t);
        return;
    }
    t->state = GW_TLS_KTLS;
    count_handshake(t, GW_TLS_KERNEL);
    if (gw_log_enabled(GW_LOG_DEBUG)) {
        char peer[64];

        peer_text(c, peer, sizeof(peer));
        gw_log(GW_LOG_DEBUG, "kTLS TX+RX installed (%s %s), client: %s", t->protocol, t->cipher, peer);
    }
    /* From here the connection is plain io_uring send/recv; c->out goes out as it is. */
    c->layer = &ktls_layer;
    gw_conn_recv_start(w, c);
}

static void tls_encode(gw_worker_t *w, gw_conn_t *c)
{
    gw_tls_conn_t *t = c->layer_data;

    switch (t->state) {
    case GW_TLS_DATA:
        encrypt_out(t);
        break;
    case GW_TLS_KTLS_PENDING:
        try_ktls(t);
        break;
    case GW_TLS_PLAIN_HTTP:
        pass_plain(w, c);
        break;
    default:
        break; /* handshaking: wolfSSL's own records are already on the wire, the owner has said nothing */
    }
}

static void tls_release(gw_worker_t *w, gw_conn_t *c)
{
    gw_tls_conn_t *t = c->layer_data;

    if (t == NULL)
        return;
    if (t->client && t->state == GW_TLS_DATA)
        gw_tls_session_save(t); /* the latest ticket */
    if (t->state == GW_TLS_HANDSHAKE && !t->client) {
        /* Closed before the handshake completed: the client went away or timed out (client_header_timeout). */
        count_failure(w);
        if (!t->logged)
            gw_tls_handshake_log(t, "client closed or timed out");
    }
    wolfSSL_free(t->ssl);
    free(t);
}

/* kTLS: EIO on a receive means a non-data record (alert, KeyUpdate) is waiting; see ktls.c. */
static void ktls_on_eof(gw_worker_t *w, gw_conn_t *c, int err)
{
    gw_tls_conn_t *t = c->layer_data;

    if (err == -EIO)
        err = gw_tls_ktls_control_record(t);
    c->ops->on_eof(w, c, err);
}

static const gw_conn_layer_t user_layer = {
    .on_data = tls_on_data,
    .on_eof = tls_on_eof,
    .encode = tls_encode,
    .release = tls_release,
};

static const gw_conn_layer_t ktls_layer = {
    .on_eof = ktls_on_eof,
    .release = tls_release,
};

gw_tls_conn_t *gw_tls_conn_new(gw_worker_t *w, gw_conn_t *c, WOLFSSL_CTX *ctx)
{
    gw_tls_conn_t *t = calloc(1, sizeof(*t));

    if (t)
        t->ssl = wolfSSL_new(ctx);
    if (t == NULL || t->ssl == NULL) {
        free(t);
        return NULL;
    }
    t->w = w;
    t->c = c;
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    c->layer = &user_layer;
    c->layer_data = t;
    return t;
}

int gw_tls_attach(gw_worker_t *w, gw_conn_t *c, const gw_tls_listen_t *lst)
{
    static char alpn[] = "http/1.1";
    gw_tls_conn_t *t = gw_tls_conn_new(w, c, lst->dflt->ctx);

    if (t == NULL) {
        gw_conn_close(w, c);
        return -ENOMEM;
    }
    t->lst = lst;
    t->conf = lst->dflt;
    t->state = GW_TLS_NEW;
    /* ALPN: http/1.1 now (h2 would join this list); a client asking only for
     * something else still gets a connection, without ALPN. */
    wolfSSL_UseALPN(t->ssl, alpn, sizeof(alpn) - 1, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    return 0;
}

static const gw_tls_conn_t *tls_of(const gw_conn_t *c)
{
    return c && (c->layer == &user_layer || c->layer == &ktls_layer) ? c->layer_data : NULL;
}

int gw_tls_is_tls(const gw_conn_t *c)
{
    return tls_of(c) != NULL;
}

int gw_tls_encoded(const gw_conn_t *c)
{
    const gw_tls_conn_t *t = tls_of(c);

    return t && t->encoded;
}

void gw_tls_encoded_reset(gw_conn_t *c)
{
    gw_tls_conn_t *t = (gw_tls_conn_t *)tls_of(c);

    if (t)
        t->encoded = 0;
}

const char *gw_tls_protocol(const gw_conn_t *c)
{
    const gw_tls_conn_t *t = tls_of(c);

    return t ? t->protocol : NULL;
}

const char *gw_tls_cipher(const gw_conn_t *c)
{
    const gw_tls_conn_t *t = tls_of(c);

    return t ? t->cipher : NULL;
}

const char *gw_tls_server_name(const gw_conn_t *c)
{
    const gw_tls_conn_t *t = tls_of(c);

    return t && t->protocol ? wolfSSL_get_servername(t->ssl, WOLFSSL_SNI_HOST_NAME) : NULL;
}

int gw_tls_session_reused(const gw_conn_t *c)
{
    const gw_tls_conn_t *t = tls_of(c);

    return t && t->protocol && wolfSSL_session_reused(t->ssl);
}

const char *gw_tls_alpn(const gw_conn_t *c)
{
    const gw_tls_conn_t *t = tls_of(c);
    char *name = NULL;
    unsigned short len = 0;

    if (t == NULL || t->protocol == NULL)
        return NULL;
    if (wolfSSL_ALPN_GetProtocol(t->ssl, &name, &len) != WOLFSSL_SUCCESS || name == NULL)
        return NULL;
    return name;
}
