/* kTLS install for the VM test's echo server: wolfSSL's ATOMIC_USER getters
 * give the traffic keys, IVs and sequence numbers; the kernel's crypto_info
 * structs want them cut differently per cipher and TLS version (see
 * /work/shared/KTLS.md, checked against Debian's wolfSSL 5.5.4). */
#include "ktls_install.h"

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

union crypto_info {
    struct tls_crypto_info base;
    struct tls12_crypto_info_aes_gcm_128 gcm128;
    struct tls12_crypto_info_aes_gcm_256 gcm256;
    struct tls12_crypto_info_chacha20_poly1305 chacha;
};

static void put_be64(unsigned char *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)v;
        v >>= 8;
    }
}

const char *ktls_cipher_name(WOLFSSL *ssl)
{
    switch (wolfSSL_GetBulkCipher(ssl)) {
    case wolfssl_aes_gcm:
        return wolfSSL_GetKeySize(ssl) == 32 ? "aes-gcm-256" : "aes-gcm-128";
    case wolfssl_chacha:
        return "chacha20-poly1305";
    default:
        return "not offloadable";
    }
}

/* Fills ci for one direction. The salt/iv split differs: TLS 1.2 AES-GCM
 * has a 4-byte implicit IV (the salt) and an 8-byte explicit nonce carried
 * in each record, which the kernel starts from `iv` (the sequence number is
 * as good a nonce as any and is what wolfSSL uses); TLS 1.3 AES-GCM has a
 * 12-byte IV split 4+8; ChaCha20-Poly1305 takes the whole 12-byte IV in both
 * versions. Returns the struct size, or 0 for a cipher the kernel can't do. */
static size_t fill(union crypto_info *ci, WOLFSSL *ssl, int tls13,
                   const unsigned char *key, const unsigned char *iv, uint64_t seq)
{
    int keysz = wolfSSL_GetKeySize(ssl);

    memset(ci, 0, sizeof(*ci));
    ci->base.version = tls13 ? TLS_1_3_VERSION : TLS_1_2_VERSION;
    switch (wolfSSL_GetBulkCipher(ssl)) {
    case wolfssl_aes_gcm:
        if (keysz == 16) {
            ci->base.cipher_type = TLS_CIPHER_AES_GCM_128;
            memcpy(ci->gcm128.key, key, 16);
            memcpy(ci->gcm128.salt, iv, 4);
            if (tls13)
                memcpy(ci->gcm128.iv, iv + 4, 8);
            else
                put_be64(ci->gcm128.iv, seq);
            put_be64(ci->gcm128.rec_seq, seq);
            return sizeof(ci->gcm128);
        }
        if (keysz == 32) {
            ci->base.cipher_type = TLS_CIPHER_AES_GCM_256;
            memcpy(ci->gcm256.key, key, 32);
            memcpy(ci->gcm256.salt, iv, 4);
            if (tls13)
                memcpy(ci->gcm256.iv, iv + 4, 8);
            else
                put_be64(ci->gcm256.iv, seq);
            put_be64(ci->gcm256.rec_seq, seq);
            return sizeof(ci->gcm256);
        }
        return 0;
    case wolfssl_chacha:
        ci->base.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
        memcpy(ci->chacha.key, key, 32);
        memcpy(ci->chacha.iv, iv, 12);
        put_be64(ci->chacha.rec_seq, seq);
        return sizeof(ci->chacha);
    default:
        return 0;
    }
}

int ktls_install_server(WOLFSSL *ssl, int fd, char *err, size_t errlen)
{
    int tls13 = wolfSSL_version(ssl) == TLS1_3_VERSION;
    union crypto_info ci;
    word64 seq = 0;
    size_t len;

    if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
        snprintf(err, errlen, "setsockopt(TCP_ULP, tls): %s", strerror(errno));
        return -1;
    }

    /* The getters' return values are not reliable status codes (KTLS.md):
     * the sequence numbers are whatever they wrote into seq. TX is ours
     * (already 1 in TLS 1.3: the NewSessionTicket went out), RX the peer's. */
    wolfSSL_GetSequenceNumber(ssl, &seq);
    len = fill(&ci, ssl, tls13, wolfSSL_GetServerWriteKey(ssl), wolfSSL_GetServerWriteIV(ssl), seq);
    if (len == 0) {
        snprintf(err, errlen, "cipher %s (key %d bytes) not offloadable",
                 wolfSSL_get_cipher_name(ssl), wolfSSL_GetKeySize(ssl));
        return -1;
    }
    if (setsockopt(fd, SOL_TLS, TLS_TX, &ci, (socklen_t)len) < 0) {
        snprintf(err, errlen, "setsockopt(TLS_TX, %s): %s", ktls_cipher_name(ssl), strerror(errno));
        return -1;
    }

    seq = 0;
    wolfSSL_GetPeerSequenceNumber(ssl, &seq);
    len = fill(&ci, ssl, tls13, wolfSSL_GetClientWriteKey(ssl), wolfSSL_GetClientWriteIV(ssl), seq);
    if (setsockopt(fd, SOL_TLS, TLS_RX, &ci, (socklen_t)len) < 0) {
        snprintf(err, errlen, "setsockopt(TLS_RX, %s): %s", ktls_cipher_name(ssl), strerror(errno));
        return -1;
    }
    memset(&ci, 0, sizeof(ci));
    return 0;
}
