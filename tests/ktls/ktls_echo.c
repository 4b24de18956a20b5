/* ktls_echo: a TLS echo server whose record layer is the kernel's.
 *
 *   ktls_echo PORT CERT.pem KEY.pem
 *
 * Listens on 127.0.0.1:PORT and serves one connection at a time, forever:
 * wolfSSL does the handshake (TLS 1.2 or 1.3, whatever cipher the client
 * asks for), then the keys go to the kernel (TLS_TX + TLS_RX) and wolfSSL is
 * done with the socket. The rest is plain recv/send on the file descriptor:
 * the client sends "N\n" and N bytes, gets the N bytes back, then a
 * close_notify sent as an alert record through sendmsg, and answers with its
 * own close_notify, which must arrive as a non-data record (recvmsg with the
 * TLS_GET_RECORD_TYPE cmsg). One line per connection on stdout says how it
 * went; the VM's init script reads it, and /proc/net/tls_stat shows whether
 * the kernel really did the work.
 *
 * Part of scripts/ktls-vm-test; it runs inside the VM, never in CI directly. */
#include "ktls_install.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define RECORD_ALERT 21
#define RECORD_DATA 23
#define MAX_ECHO (8u << 20)

/* One recvmsg: returns bytes read (0 at EOF, -1 on error) and the TLS
 * record type the kernel decrypted them from. */
static ssize_t recv_record(int fd, void *buf, size_t len, unsigned char *type)
{
    char cbuf[CMSG_SPACE(sizeof(unsigned char))];
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
    };
    ssize_t n = recvmsg(fd, &msg, 0);
    struct cmsghdr *c;

    *type = RECORD_DATA;
    if (n < 0)
        return -1;
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE)
            *type = *CMSG_DATA(c);
    return n;
}

static int send_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* close_notify after TLS_TX: an alert record, so the record type goes in a
 * cmsg; a plain send would wrap it as application data. */
static int send_close_notify(int fd)
{
    unsigned char alert[2] = { 1, 0 };   /* warning, close_notify */
    char cbuf[CMSG_SPACE(sizeof(unsigned char))];
    struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

    c->cmsg_level = SOL_TLS;
    c->cmsg_type = TLS_SET_RECORD_TYPE;
    c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
    *CMSG_DATA(c) = RECORD_ALERT;
    return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof(alert) ? 0 : -1;
}

/* Everything after the handshake: returns NULL on success or what failed. */
static const char *echo(int fd, size_t *echoed)
{
    static unsigned char buf[MAX_ECHO + 64];
    size_t have = 0, want = 0, head = 0;
    unsigned char type, alert[16];
    ssize_t n;

    /* "N\n" then N bytes, possibly spread over many records. */
    for (;;) {
        if (head == 0) {
            unsigned char *nl = memchr(buf, '\n', have);
            if (nl) {
                head = (size_t)(nl - buf) + 1;
                want = strtoul((char *)buf, NULL, 10);
                if (want > MAX_ECHO)
                    return "length too large";
            } else if (have > 32) {
                return "no length line";
            }
        }
        if (head && have >= head + want)
            break;
        n = recv_record(fd, buf + have, sizeof(buf) - have, &type);
        if (n < 0)
            return errno == EIO ? "recv: EIO (unexpected control record)" : "recv failed";
        if (n == 0)
            return "EOF before the whole request";
        if (type != RECORD_DATA)
            return "non-data record inside the request";
        have += (size_t)n;
    }
    if (send_all(fd, buf + head, want) < 0)
        return "send failed";
    *echoed = want;
    if (send_close_notify(fd) < 0)
        return "sendmsg(close_notify) failed";

    n = recv_record(fd, alert, sizeof(alert), &type);
    if (n < 0)
        return "recvmsg for the peer's close_notify failed";
    if (n == 0)
        return "EOF instead of the peer's close_notify";
    if (type != RECORD_ALERT || n != 2 || alert[1] != 0)
        return "peer's last record is not a close_notify alert";
    return NULL;
}

static void serve(WOLFSSL_CTX *ctx, int fd)
{
    WOLFSSL *ssl = wolfSSL_new(ctx);
    char err[256];
    const char *why;
    size_t echoed = 0;

    if (!ssl || wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS) {
        printf("ktls_echo: FAIL wolfSSL_new\n");
        goto out;
    }
    if (wolfSSL_accept(ssl) != WOLFSSL_SUCCESS) {
        printf("ktls_echo: FAIL handshake: error %d\n", wolfSSL_get_error(ssl, 0));
        goto out;
    }
    /* wolfSSL reads exactly the records it needs; anything it buffered past
     * the handshake would be lost to the kernel. */
    if (wolfSSL_pending(ssl) > 0) {
        printf("ktls_echo: FAIL wolfSSL holds %d bytes past the handshake\n", wolfSSL_pending(ssl));
        goto out;
    }
    if (ktls_install_server(ssl, fd, err, sizeof(err)) < 0) {
        printf("ktls_echo: FAIL %s %s: %s\n", wolfSSL_get_version(ssl), wolfSSL_get_cipher_name(ssl), err);
        goto out;
    }
    why = echo(fd, &echoed);
    if (why)
        printf("ktls_echo: FAIL %s %s kernel tx+rx: %s\n", wolfSSL_get_version(ssl), ktls_cipher_name(ssl), why);
    else
        printf("ktls_echo: OK %s %s kernel tx+rx, echoed %zu bytes, close_notify both ways\n",
               wolfSSL_get_version(ssl), ktls_cipher_name(ssl), echoed);
out:
    if (ssl)
        wolfSSL_free(ssl);   /* no wolfSSL_shutdown: the kernel owns the record layer now */
    close(fd);
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    WOLFSSL_CTX *ctx;
    int lfd, one = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: ktls_echo PORT CERT.pem KEY.pem\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    wolfSSL_Init();
    ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (!ctx || wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_use_certificate_chain_file(ctx, argv[2]) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_use_PrivateKey_file(ctx, argv[3], WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "ktls_echo: cannot set up the TLS context with %s and %s\n", argv[2], argv[3]);
        return 1;
    }
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0) {
        perror("ktls_echo: listen");
        return 1;
    }
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0)
            serve(ctx, fd);
        else if (errno != EINTR)
            return 1;
    }
}
