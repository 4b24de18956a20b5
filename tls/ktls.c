/*
 * Kernel TLS: once the handshake is done, hand the traffic keys to the
 * kernel (TLS_TX, TLS_RX) so the connection becomes a plain io_uring
 * send/recv one. Debian's wolfSSL has the ATOMIC_USER getters for the keys,
 * IVs and sequence numbers (see /work/shared/KTLS.md for what was checked).
 *
 * The setsockopt calls are plain syscalls, once per connection, at a moment
 * when nothing of the connection is in the ring (conn.c waits for that): the
 * order against sends and receives matters more than one syscall.
 *
 * After TLS_RX a non-data record makes a receive fail with EIO; it is read
 * here with recvmsg and the TLS_GET_RECORD_TYPE cmsg. close_notify is an
 * orderly end. A KeyUpdate cannot be followed (wolfSSL has no call that
 * derives the next key for us to give the kernel), so it too ends the
 * connection in order: the request in progress is answered, then the
 * connection closes and the client reconnects.
 */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "internal.h"
#include "tls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define RECORD_ALERT 21
#define RECORD_HANDSHAKE 22

/* Once a socket says the kernel has no TLS (ENOENT), stop asking per connection. */
static atomic_int usable = 1;
static atomic_int mode_logged;

int gw_tls_ktls_usable(void)
{
    return atomic_load(&usable);
}

void gw_tls_ktls_log_mode(int installed, int err)
{
    if (atomic_exchange(&mode_logged, 1))
        return;
    if (installed)
        gw_log(GW_LOG_INFO, "TLS record layer: kernel (kTLS TX+RX installed on the first connection)");
    else
        gw_log(GW_LOG_INFO, "TLS record layer: userspace (wolfSSL): kTLS not available (%d: %s)", -err,
               strerror(-err));
}

static atomic_int probed;       /* 0 not yet, 1 available, -errno not */
static atomic_int startup_logged;

int gw_tls_ktls_probe(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ret = 1;

    if (fd < 0)
        return -errno;
    /* On a socket that is not connected, a kernel with the TLS module says
     * ENOTCONN; one without it says ENOENT. */
    if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0 && errno == ENOENT)
        ret = -ENOENT;
    close(fd);
    atomic_store(&probed, ret);
    if (ret < 0)
        atomic_store(&usable, 0);
    return ret < 0 ? ret : 0;
}

void gw_tls_ktls_log_startup(void)
{
    int p = atomic_load(&probed);

    if (p == 0 || atomic_exchange(&startup_logged, 1))
        return;
    if (p > 0) {
        gw_log(GW_LOG_INFO, "ssl_ktls on: kTLS available (TCP_ULP \"tls\"): the kernel takes the record layer "
                            "after each handshake with an AES-GCM or ChaCha20-Poly1305 cipher");
        return;
    }
    atomic_store(&mode_logged, 1);
    gw_log(GW_LOG_INFO, "ssl_ktls on: TLS record layer: userspace (wolfSSL): kTLS not available "
                        "(setsockopt(TCP_ULP, \"tls\"): %s)", strerror(-p));
}

int gw_tls_ktls_cipher_ok(WOLFSSL *ssl)
{
    int bulk = wolfSSL_GetBulkCipher(ssl);
    int v = wolfSSL_version(ssl);

    if (v != TLS1_2_VERSION && v != TLS1_3_VERSION)
        return 0;
    if (bulk == wolfssl_aes_gcm)
        return wolfSSL_GetKeySize(ssl) == 16 || wolfSSL_GetKeySize(ssl) == 32;
    return bulk == wolfssl_chacha;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

union crypto_info {
    struct tls_crypto_info base;
    struct tls12_crypto_info_aes_gcm_128 gcm128;
    struct tls12_crypto_info_aes_gcm_256 gcm256;
    struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/* Fill one direction's crypto info from wolfSSL's key, IV and sequence number. Returns its size. */
static socklen_t fill(union crypto_info *ci, WOLFSSL *ssl, const unsigned char *key, const unsigned char *iv,
                      uint64_t seq)
{
    int v = wolfSSL_version(ssl);
    int ks = wolfSSL_GetKeySize(ssl);
    int ivs = wolfSSL_GetIVSize(ssl);
    unsigned char seqbe[8];

    memset(ci, 0, sizeof(*ci));
    put_be64(seqbe, seq);
    ci->base.version = v == TLS1_3_VERSION ? TLS_1_3_VERSION : TLS_1_2_VERSION;
    if (wolfSSL_GetBulkCipher(ssl) == wolfssl_chacha) {
        ci->base.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
        memcpy(ci->chacha.key, key, sizeof(ci->chacha.key));
        memcpy(ci->chacha.iv, iv, (size_t)ivs < sizeof(ci->chacha.iv) ? (size_t)ivs : sizeof(ci->chacha.iv));
        memcpy(ci->chacha.rec_seq, seqbe, 8);
        return sizeof(ci->chacha);
    }
    /* AES-GCM: the 4-byte salt is the implicit part of the IV. TLS 1.2's
     * explicit nonce is the sequence number (what wolfSSL sends); TLS 1.3's
     * 12-byte IV continues into the kernel's iv field. */
    if (ks == 16) {
        ci->base.cipher_type = TLS_CIPHER_AES_GCM_128;
        memcpy(ci->gcm128.key, key, 16);
        memcpy(ci->gcm128.salt, iv, 4);
        memcpy(ci->gcm128.iv, ivs >= 12 ? iv + 4 : seqbe, 8);
        memcpy(ci->gcm128.rec_seq, seqbe, 8);
        return sizeof(ci->gcm128);
    }
    ci->base.cipher_type = TLS_CIPHER_AES_GCM_256;
    memcpy(ci->gcm256.key, key, 32);
    memcpy(ci->gcm256.salt, iv, 4);
    memcpy(ci->gcm256.iv, ivs >= 12 ? iv + 4 : seqbe, 8);
    memcpy(ci->gcm256.rec_seq, seqbe, 8);
    return sizeof(ci->gcm256);
}

int gw_tls_ktls_install(gw_tls_conn_t *t)
{
    WOLFSSL *ssl = t->ssl;
    int fd = t->c->fd;
    union crypto_info tx, rx;
    word64 tx_seq = 0, rx_seq = 0;
    socklen_t txlen, rxlen;
    int err;

    if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
        err = -errno;
        if (err == -ENOENT)
            atomic_store(&usable, 0);
        gw_tls_ktls_log_mode(0, err);
        return err;
    }
    /* The getters' return values are not to be trusted (KTLS.md): read what they fill. */
    wolfSSL_GetSequenceNumber(ssl, &tx_seq);
    wolfSSL_GetPeerSequenceNumber(ssl, &rx_seq);
    txlen = fill(&tx, ssl, wolfSSL_GetServerWriteKey(ssl), wolfSSL_GetServerWriteIV(ssl), tx_seq);
    rxlen = fill(&rx, ssl, wolfSSL_GetClientWriteKey(ssl), wolfSSL_GetClientWriteIV(ssl), rx_seq);
    /* With the ULP set but no key yet the socket still works as plain TCP,
     * so a TX failure can fall back to userspace. */
    if (setsockopt(fd, SOL_TLS, TLS_TX, &tx, txlen) < 0) {
        err = -errno;
        gw_log(GW_LOG_INFO, "kTLS: setsockopt(TLS_TX) failed (%d: %s), record layer stays in userspace", -err,
               strerror(-err));
        return err;
    }
    if (setsockopt(fd, SOL_TLS, TLS_RX, &rx, rxlen) < 0) {
        err = -errno;
        /* TX is the kernel's already: userspace cannot send any more. */
        gw_log(GW_LOG_INFO, "kTLS: setsockopt(TLS_RX) failed (%d: %s) after TLS_TX, closing the connection",
               -err, strerror(-err));
        memset(&rx, 0, sizeof(rx));
        return -EPIPE;
    }
    memset(&tx, 0, sizeof(tx));
    memset(&rx, 0, sizeof(rx));
    gw_tls_ktls_log_mode(1, 0);
    return 0;
}

int gw_tls_ktls_control_record(gw_tls_conn_t *t)
{
    unsigned char buf[512];
    char cbuf[CMSG_SPACE(sizeof(unsigned char))];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *cm;
    ssize_t n;

    /* A rare path (once at the end of a connection): a direct syscall. */
    n = recvmsg(t->c->fd, &msg, MSG_DONTWAIT);
    if (n < 0)
        return -errno;
    cm = CMSG_FIRSTHDR(&msg);
    if (cm == NULL || cm->cmsg_level != SOL_TLS || cm->cmsg_type != TLS_GET_RECORD_TYPE)
        return n == 0 ? 0 : -EPROTO;
    switch (*CMSG_DATA(cm)) {
    case RECORD_ALERT:
        /* close_notify (warning, 0) ends the input in order; any other alert is an error. */
        return n >= 2 && buf[1] == 0 ? 0 : -ECONNRESET;
    case RECORD_HANDSHAKE:
        gw_log(GW_LOG_INFO, "kTLS: post-handshake message (type %u) from the client, closing after the "
                            "current request", n > 0 ? buf[0] : 0u);
        return 0;
    default:
        return -EPROTO;
    }
}
