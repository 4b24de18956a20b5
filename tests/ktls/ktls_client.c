/* ktls_client: a TLS client (wolfSSL, userspace record layer) whose version
 * and cipher are fixed, for the kTLS VM test.
 *
 *   ktls_client HOST PORT 1.2|1.3 CIPHER CA.pem echo N
 *       sends "N\n" and N pattern bytes in uneven writes, expects them back,
 *       then the server's close_notify, and answers with its own.
 *   ktls_client HOST PORT 1.2|1.3 CIPHER CA.pem get PATH [COUNT]
 *       COUNT (default 1) GET requests for PATH on one connection (the last
 *       with "Connection: close"); each answer must be 200 and its body goes
 *       to stdout.
 *   ktls_client HOST PORT 1.3 CIPHER CA.pem getfast PATH COUNT
 *       like get, but the client's last handshake flight (Finished) and the
 *       first request leave in one send(): the server gets them in the same
 *       segment, the way eager clients do it, and must still give the
 *       connection to the kernel.
 *   ktls_client HOST PORT 1.2|1.3 CIPHER CA.pem getkeep PATH COUNT
 *       like get, all requests keep-alive; then our close_notify, and the
 *       server must close the connection (EOF or reset) within the timeout.
 *   ktls_client HOST PORT 1.2|1.3 CIPHER CA.pem hold PATH SECONDS
 *       one keep-alive GET, then "holding" on stderr and SECONDS of idle
 *       connection (for the VM's init to look at the live kTLS counters),
 *       then as getkeep.
 *   ktls_client HOST PORT 1.3 CIPHER CA.pem keyupdate PATH
 *       one GET, then a TLS 1.3 KeyUpdate and a second GET: the server may
 *       answer it (it followed the new key) or close the connection (it
 *       could not); either is reported on stderr ("keyupdate: answered" /
 *       "keyupdate: closed (how)"), a hang or garbage is a failure.
 *   ktls_client HOST PORT 1.2|1.3 CIPHER CA.pem tamper PATH
 *       one GET whose record has a flipped bit in its authentication tag: the
 *       server must not answer and must close ("tamper: closed (how)").
 *   ktls_client HOST PORT 1.2|1.3 CIPHER CA.pem post PATH FILE
 *       one POST of FILE's bytes (uneven writes, so the server's receive path
 *       sees records of many sizes); the 200 answer's body goes to stdout.
 *
 * CIPHER is one wolfSSL suite name, so the negotiation can only land on it.
 * The certificate is verified against CA.pem for the name "localhost".
 * stderr gets one line with what was negotiated; exit 0 only if everything
 * above held. Every read has a timeout: a broken server fails, never hangs. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define IO_TIMEOUT_S 20
#define RECORD_COPY_MAX (16384 + 512)

static WOLFSSL *ssl;
static unsigned char rbuf[1 << 16];
static size_t rlen, roff;

/* getfast: records other than plaintext handshake ones (0x16: ClientHello)
 * are held back until the next read, which then sends them all at once. */
static int coalesce, io_fd;
static int tamper;   /* flip a bit in the next application data record sent */
static unsigned char held[1 << 16];
static size_t held_len;

static void die(const char *what);

static int flush_held(void)
{
    size_t off = 0;

    while (off < held_len) {
        ssize_t n = send(io_fd, held + off, held_len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    held_len = 0;
    return 0;
}

static int io_send(WOLFSSL *s, char *buf, int sz, void *ctx)
{
    ssize_t n;

    if (coalesce && (unsigned char)buf[0] != 0x16 && held_len + (size_t)sz <= sizeof(held)) {
        memcpy(held + held_len, buf, (size_t)sz);
        held_len += (size_t)sz;
        return sz;
    }
    if (held_len && flush_held() < 0)
        return WOLFSSL_CBIO_ERR_GENERAL;
    if (tamper && (unsigned char)buf[0] == 0x17) {
        /* The last byte is the AEAD tag's: the record can no longer be authenticated. */
        static unsigned char bad[RECORD_COPY_MAX];
        if ((size_t)sz <= sizeof(bad)) {
            memcpy(bad, buf, (size_t)sz);
            bad[sz - 1] ^= 0x01;
            tamper = 0;
            n = send(io_fd, bad, (size_t)sz, MSG_NOSIGNAL);
            return n < 0 ? WOLFSSL_CBIO_ERR_GENERAL : (int)n;
        }
    }
    n = send(io_fd, buf, (size_t)sz, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN ? WOLFSSL_CBIO_ERR_WANT_WRITE : WOLFSSL_CBIO_ERR_GENERAL;
    return (int)n;
}

static int io_recv(WOLFSSL *s, char *buf, int sz, void *ctx)
{
    ssize_t n;

    if (held_len) {
        if (flush_held() < 0)
            return WOLFSSL_CBIO_ERR_GENERAL;
        coalesce = 0;   /* once is the point; later writes go out as they come */
    }
    n = recv(io_fd, buf, (size_t)sz, 0);
    if (n == 0)
        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return WOLFSSL_CBIO_ERR_WANT_READ;   /* SO_RCVTIMEO expired */
        return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
    }
    return (int)n;
}

static void die(const char *what)
{
    fprintf(stderr, "ktls_client: FAIL %s\n", what);
    exit(1);
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 131 + (i >> 9));
}

static void write_all(const void *p, size_t len)
{
    if (len && wolfSSL_write(ssl, p, (int)len) != (int)len)
        die("write");
}

/* Buffered reads for the HTTP parser: returns bytes available (> 0), or 0
 * when the server closed (close_notify or EOF). */
static size_t fill(void)
{
    int n;

    if (roff < rlen)
        return rlen - roff;
    n = wolfSSL_read(ssl, rbuf, sizeof(rbuf));
    if (n <= 0) {
        int e = wolfSSL_get_error(ssl, n);
        if (e == WOLFSSL_ERROR_ZERO_RETURN || e == SOCKET_PEER_CLOSED_E || n == 0)
            return 0;
        fprintf(stderr, "ktls_client: read error %d\n", e);
        die("read");
    }
    rlen = (size_t)n;
    roff = 0;
    return rlen;
}

static int getbyte(void)
{
    return fill() ? rbuf[roff++] : -1;
}

/* One header or status line without its CRLF; die at EOF. */
static void getline_crlf(char *out, size_t cap)
{
    size_t n = 0;
    int c;

    while ((c = getbyte()) != '\n') {
        if (c < 0)
            die("EOF inside the response head");
        if (c != '\r' && n + 1 < cap)
            out[n++] = (char)c;
    }
    out[n] = '\0';
}

static void copy_body(size_t len)
{
    while (len > 0) {
        size_t n = fill(), take;
        if (n == 0)
            die("EOF inside the body");
        take = n < len ? n : len;
        fwrite(rbuf + roff, 1, take, stdout);
        roff += take;
        len -= take;
    }
}

/* Reads one response; its body goes to stdout. */
static void read_response(void)
{
    char line[8192];
    long clen = -1;
    int chunked = 0, status = 0;

    getline_crlf(line, sizeof(line));
    if (sscanf(line, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
        fprintf(stderr, "ktls_client: status line: %s\n", line);
        die("not a 200 answer");
    }
    for (;;) {
        getline_crlf(line, sizeof(line));
        if (line[0] == '\0')
            break;
        if (strncasecmp(line, "content-length:", 15) == 0)
            clen = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0 && strstr(line, "chunked"))
            chunked = 1;
    }
    if (chunked) {
        for (;;) {
            size_t size;
            getline_crlf(line, sizeof(line));
            size = strtoul(line, NULL, 16);
            if (size == 0)
                break;
            copy_body(size);
            getline_crlf(line, sizeof(line));
        }
        getline_crlf(line, sizeof(line));   /* no trailers expected */
    } else if (clen >= 0) {
        copy_body((size_t)clen);
    } else {
        while (fill()) {               /* body up to the close */
            fwrite(rbuf + roff, 1, rlen - roff, stdout);
            roff = rlen;
        }
    }
}

static void send_get(const char *path, int last)
{
    char req[1024];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", path,
                     last ? "Connection: close\r\n" : "");

    write_all(req, (size_t)n);
}

static void do_get(const char *path, int count, int keep)
{
    for (int i = 1; i <= count; i++) {
        send_get(path, i == count && !keep);
        read_response();
    }
}

/* After our close_notify on a kept-alive connection the server has nothing
 * more to do than close; what it sends first (its own close_notify) is not
 * looked at. Reads the raw socket: wolfSSL is done once it sent the alert. */
static void expect_close(int fd)
{
    unsigned char junk[4096];

    for (;;) {
        ssize_t n = recv(fd, junk, sizeof(junk), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            die("the server kept the connection open after our close_notify");
        if (n < 0 && errno != EINTR)
            die("recv after close_notify");
    }
}

/* A GET the server can't authenticate: no answer may come, only the end of
 * the connection (EOF, reset or an alert, which wolfSSL reports as an error). */
static void do_tamper(const char *path)
{
    int n, e;

    tamper = 1;
    send_get(path, 1);
    n = wolfSSL_read(ssl, rbuf, sizeof(rbuf));
    if (n > 0)
        die("the server answered a request it could not have decrypted");
    e = wolfSSL_get_error(ssl, n);
    if (e == WOLFSSL_ERROR_WANT_READ)
        die("no close after the tampered record");
    fprintf(stderr, "ktls_client: tamper: closed (%s)\n",
            e == WOLFSSL_ERROR_ZERO_RETURN ? "close_notify" : e == SOCKET_PEER_CLOSED_E ? "EOF" :
            e == FATAL_ERROR ? "alert" : "reset");
}

/* A GET, a KeyUpdate, a GET. Whether the server follows the new key or
 * closes is its choice (the kernel can't derive the next key by itself);
 * both are reported, only a timeout fails. */
static void do_keyupdate(const char *path)
{
    int n, e;

    send_get(path, 0);
    read_response();
    if (wolfSSL_update_keys(ssl) != WOLFSSL_SUCCESS)
        die("wolfSSL_update_keys");
    send_get(path, 1);
    if (roff == rlen) {
        n = wolfSSL_read(ssl, rbuf, sizeof(rbuf));
        if (n <= 0) {
            e = wolfSSL_get_error(ssl, n);
            if (e == WOLFSSL_ERROR_WANT_READ)
                die("no answer and no close after the KeyUpdate");
            fprintf(stderr, "ktls_client: keyupdate: closed (%s)\n",
                    e == WOLFSSL_ERROR_ZERO_RETURN ? "close_notify" : e == SOCKET_PEER_CLOSED_E ? "EOF" : "reset");
            return;
        }
        rlen = (size_t)n;
        roff = 0;
    }
    read_response();
    fprintf(stderr, "ktls_client: keyupdate: answered\n");
}

/* Writes len bytes in uneven pieces: records of many sizes reach the peer. */
static void write_uneven(const unsigned char *p, size_t len)
{
    size_t off = 0, step = 1;

    while (off < len) {
        size_t take = len - off < step ? len - off : step;
        write_all(p + off, take);
        off += take;
        step = step * 3 + 7;
        if (step > 16384)
            step = 1000;
    }
}

static void do_post(const char *path, const char *file)
{
    static unsigned char body[4 << 20];
    char req[1024];
    FILE *f = fopen(file, "rb");
    size_t len;
    int n;

    if (!f)
        die("cannot open the POST body file");
    len = fread(body, 1, sizeof(body), f);
    fclose(f);
    n = snprintf(req, sizeof(req),
                 "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n"
                 "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n", path, len);
    write_all(req, (size_t)n);
    write_uneven(body, len);
    read_response();
}

static void do_echo(size_t len)
{
    unsigned char *out = malloc(len + 1), *back = malloc(len + 1);
    char head[32];
    size_t got = 0;
    int n;

    if (!out || !back)
        die("malloc");
    for (size_t i = 0; i < len; i++)
        out[i] = pattern(i);
    n = snprintf(head, sizeof(head), "%zu\n", len);
    write_all(head, (size_t)n);
    write_uneven(out, len);
    while (got < len) {
        n = wolfSSL_read(ssl, back + got, (int)(len - got));
        if (n <= 0)
            die("echo came back short");
        got += (size_t)n;
    }
    if (memcmp(out, back, len) != 0)
        die("echo differs from what was sent");
    n = wolfSSL_read(ssl, back, 1);
    if (n != 0 && wolfSSL_get_error(ssl, n) != WOLFSSL_ERROR_ZERO_RETURN)
        die("no close_notify after the echo");
    free(out);
    free(back);
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
    WOLFSSL_CTX *ctx;
    int fd, tls13;

    if (argc < 8 || (strcmp(argv[6], "echo") != 0 && strcmp(argv[6], "get") != 0 &&
                     strcmp(argv[6], "getkeep") != 0 && strcmp(argv[6], "keyupdate") != 0 &&
                     strcmp(argv[6], "hold") != 0 && strcmp(argv[6], "getfast") != 0 &&
                     strcmp(argv[6], "tamper") != 0 &&
                     strcmp(argv[6], "post") != 0)) {
        fprintf(stderr, "usage: ktls_client HOST PORT 1.2|1.3 CIPHER CA.pem echo N | get PATH [COUNT]\n"
                        "       | getfast PATH COUNT | getkeep PATH COUNT | hold PATH SECONDS | keyupdate PATH\n"
                        "       | tamper PATH | post PATH FILE\n");
        return 2;
    }
    tls13 = strcmp(argv[3], "1.3") == 0;
    wolfSSL_Init();
    ctx = wolfSSL_CTX_new(tls13 ? wolfTLSv1_3_client_method() : wolfTLSv1_2_client_method());
    if (!ctx || wolfSSL_CTX_set_cipher_list(ctx, argv[4]) != WOLFSSL_SUCCESS)
        die("cipher list");
    if (wolfSSL_CTX_load_verify_locations(ctx, argv[5], NULL) != WOLFSSL_SUCCESS)
        die("CA file");
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    wolfSSL_CTX_SetIORecv(ctx, io_recv);
    wolfSSL_CTX_SetIOSend(ctx, io_send);
    coalesce = strcmp(argv[6], "getfast") == 0;

    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
        die("HOST must be an IPv4 address");
    sa.sin_port = htons((unsigned short)atoi(argv[2]));
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect");
    io_fd = fd;

    ssl = wolfSSL_new(ctx);
    if (!ssl || wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS)
        die("wolfSSL_new");
    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
    wolfSSL_check_domain_name(ssl, "localhost");
    if (wolfSSL_connect(ssl) != WOLFSSL_SUCCESS) {
        char msg[80];
        fprintf(stderr, "ktls_client: handshake error %d: %s\n", wolfSSL_get_error(ssl, 0),
                wolfSSL_ERR_error_string((unsigned long)wolfSSL_get_error(ssl, 0), msg));
        die("handshake");
    }
    fprintf(stderr, "ktls_client: %s %s\n", wolfSSL_get_version(ssl), wolfSSL_get_cipher_name(ssl));

    if (strcmp(argv[6], "echo") == 0)
        do_echo(strtoul(argv[7], NULL, 10));
    else if (strcmp(argv[6], "post") == 0 && argc > 8)
        do_post(argv[7], argv[8]);
    else if (strcmp(argv[6], "keyupdate") == 0)
        do_keyupdate(argv[7]);
    else if (strcmp(argv[6], "tamper") == 0)
        do_tamper(argv[7]);
    else if (strcmp(argv[6], "hold") == 0) {
        do_get(argv[7], 1, 1);
        fflush(stdout);
        fprintf(stderr, "ktls_client: holding\n");
        sleep(argc > 8 ? (unsigned)atoi(argv[8]) : 1);
    }
    else
        do_get(argv[7], argc > 8 ? atoi(argv[8]) : 1, strcmp(argv[6], "getkeep") == 0);

    wolfSSL_shutdown(ssl);   /* our close_notify: the echo server waits for it */
    flush_held();
    if (strcmp(argv[6], "getkeep") == 0 || strcmp(argv[6], "hold") == 0)
        expect_close(fd);
    fflush(stdout);
    wolfSSL_free(ssl);
    close(fd);
    wolfSSL_CTX_free(ctx);
    return 0;
}
