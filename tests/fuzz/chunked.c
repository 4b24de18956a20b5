/*
 * Fuzz target: chunked bodies, both ways.
 *
 * Request side: a client's chunked body is forwarded upstream as received,
 * framing included (http/client.c), as far as llhttp says the message goes.
 * Whatever we forward as a complete message must be read the same way by a
 * strict RFC 9112 decoder written here: same end, same decoded length.
 * Otherwise a backend could see a different message boundary than we did:
 * request smuggling.
 *
 * Response side: for an HTTP/1.0 client the gateway decodes a chunked
 * response (http/response.c, on_body in dechunk mode) and sends the data
 * slices. They must be exactly what the strict decoder decodes.
 *
 * The first input byte chooses how the bytes are cut into pieces.
 */
#include <ctype.h>

#include "core/conn.h"
#include "core/gw.h"
#include "http/request.h"
#include "http/response.h"
#include "tests/fuzz/fuzz.h"

/* ---- the reference decoder ---- */

enum { REF_INCOMPLETE = -2, REF_INVALID = -1 };

static int tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* CRLF at p? 1 yes, 0 incomplete, -1 something else. */
static int crlf(const uint8_t *p, size_t left)
{
    if (left >= 1 && p[0] != '\r')
        return -1;
    if (left >= 2 && p[1] != '\n')
        return -1;
    return left >= 2 ? 1 : 0;
}

/*
 * Decode the chunked body at p: the bytes it takes (>= 0) and the data into
 * out (*out_len), REF_INCOMPLETE, or REF_INVALID.
 */
static long ref_decode(const uint8_t *p, size_t n, uint8_t *out, size_t *out_len)
{
    size_t i = 0;

    *out_len = 0;
    for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        int c;

        while (i < n && isxdigit(p[i])) {
            if (size >> 60)
                return REF_INVALID; /* overflow */
            size = size * 16 + (uint64_t)(isdigit(p[i]) ? p[i] - '0' : (tolower(p[i]) - 'a' + 10));
            i++;
            digits++;
        }
        if (i == n)
            return REF_INCOMPLETE;
        if (digits == 0)
            return REF_INVALID;
        /* [ BWS ";" chunk-ext ]: the extensions' inside moves no boundary,
         * so like http/chunked.c only their characters are checked. */
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i == n)
            return REF_INCOMPLETE;
        if (p[i] == ';') {
            size_t ext = i + 1;

            for (i++; i < n && p[i] != '\r'; i++)
                if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f || i - ext >= 4096)
                    return REF_INVALID;
        } else if (i > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t')) {
            return REF_INVALID; /* BWS only before ";" */
        }
        c = crlf(p + i, n - i);
        if (c <= 0)
            return c < 0 ? REF_INVALID : REF_INCOMPLETE;
        i += 2;
        if (size == 0)
            break;
        if (n - i < size)
            return REF_INCOMPLETE;
        memcpy(out + *out_len, p + i, size);
        *out_len += size;
        i += size;
        c = crlf(p + i, n - i);
        if (c <= 0)
            return c < 0 ? REF_INVALID : REF_INCOMPLETE;
        i += 2;
    }
    /* trailer-section: *( field-line CRLF ) CRLF */
    for (;;) {
        size_t name = i;
        int c = crlf(p + i, n - i);

        if (c > 0)
            return (long)(i + 2);
        if (i == n || (n - i == 1 && p[i] == '\r'))
            return REF_INCOMPLETE;
        while (i < n && tchar(p[i]))
            i++;
        if (i == n)
            return REF_INCOMPLETE;
        if (i == name || p[i] != ':')
            return REF_INVALID;
        for (i++; i < n && p[i] != '\r'; i++)
            if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f || i - name > 4096)
                return REF_INVALID;
        c = crlf(p + i, n - i);
        if (c <= 0)
            return c < 0 ? REF_INVALID : REF_INCOMPLETE;
        i += 2;
    }
}

/* ---- request side ---- */

static const char req_head[] = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

static void request_side(const uint8_t *body, size_t size, unsigned step)
{
    size_t hlen = sizeof(req_head) - 1, total = hlen + size, at = 0, fwd_len = 0;
    uint8_t *all = malloc(total + 1), *fwd = malloc(total + 1), *ref = malloc(total + 1);
    gw_http_req_t *req = calloc(1, sizeof(*req));
    int head_done = 0, r = GW_AGAIN;

    memcpy(all, req_head, hlen);
    memcpy(all + hlen, body, size);
    gw_request_parser_init(req);
    while (at < total) {
        size_t n = fuzz_piece(total - at, step);
        char *piece = fuzz_copy(all + at, n);
        uint32_t off = 0, used = 0;

        r = 0;
        if (!head_done) {
            r = gw_request_parse_head(req, piece, (uint32_t)n, &off);
            if (r == 0) {
                head_done = 1;
                r = gw_request_check(req);
            }
        }
        if (head_done && r == 0) {
            r = gw_request_parse_body(req, piece + off, (uint32_t)(n - off), &used);
            if (r == 0 || r == GW_AGAIN) { /* what http/client.c queues upstream */
                memcpy(fwd + fwd_len, piece + off, used);
                fwd_len += used;
            }
        }
        free(piece);
        if (r != GW_AGAIN)
            break;
        at += n;
    }
    FUZZ_ASSERT(head_done);
    if (r == 0) {
        size_t ref_len;
        long took = ref_decode(fwd, fwd_len, ref, &ref_len);

        if (took != (long)fwd_len || ref_len != req->body_bytes) {
            fprintf(stderr, "forwarded %zu bytes as a complete chunked body (%llu decoded); the strict "
                            "decoder says %ld (%zu decoded)\n",
                    fwd_len, (unsigned long long)req->body_bytes, took, ref_len);
            abort();
        }
    }
    gw_msg_free(&req->in);
    free(req);
    free(all);
    free(fwd);
    free(ref);
}

/* ---- response side ---- */

static uint8_t *decoded;
static size_t decoded_len, decoded_cap;

/* The harness's stand-in for the client connection: collect what would be
 * sent. Linked with -Wl,--wrap=gw_conn_send_buf (meson.build), so
 * http/response.c calls this instead. */
void __wrap_gw_conn_send_buf(gw_worker_t *w, gw_conn_t *c, const char *data, uint32_t len, uint32_t bid);

void __wrap_gw_conn_send_buf(gw_worker_t *w, gw_conn_t *c, const char *data, uint32_t len, uint32_t bid)
{
    FUZZ_ASSERT(decoded_len + len <= decoded_cap);
    memcpy(decoded + decoded_len, data, len);
    decoded_len += len;
}

static const char resp_head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

static void response_side(const uint8_t *body, size_t size, unsigned step)
{
    static gw_conn_t fake_client;
    size_t hlen = sizeof(resp_head) - 1, total = hlen + size, at = 0, taken = 0;
    uint8_t *all = malloc(total + 1), *ref = malloc(total + 1);
    gw_http_req_t *req = calloc(1, sizeof(*req));
    int state = 0; /* 0 head, 1 body, 2 done, 3 error */

    memcpy(all, resp_head, hlen);
    memcpy(all + hlen, body, size);
    decoded = malloc(total + 1);
    decoded_cap = total + 1;
    decoded_len = 0;
    req->client = &fake_client;
    gw_response_parser_init(req);
    while (at < total && state < 2) {
        size_t n = fuzz_piece(total - at, step);
        char *piece = fuzz_copy(all + at, n);
        llhttp_errno_t e;
        size_t used = n;

        req->pause = GW_PAUSE_NONE;
        e = llhttp_execute(&req->rs, piece, n);
        if (e == HPE_PAUSED)
            used = (size_t)(llhttp_get_error_pos(&req->rs) - piece);
        if (state == 1 && (e == HPE_OK || e == HPE_PAUSED) &&
            gw_response_check_framing(req, piece, (uint32_t)used, e == HPE_PAUSED) < 0) {
            state = 3; /* http/proxy.c: 502, the upstream connection closed */
        } else if (e == HPE_PAUSED) {
            if (req->pause == GW_PAUSE_HEADERS) {
                /* as http/proxy.c: an HTTP/1.0 client gets it decoded */
                llhttp_resume(&req->rs);
                req->dechunk = 1;
                state = 1;
                taken = at + used;
                n = used; /* go on from there with the next piece */
            } else {
                state = 2;
                taken = at + used;
            }
        } else if (e != HPE_OK) {
            state = 3;
        }
        free(piece);
        at += n;
    }
    if (state == 2) {
        size_t ref_len;
        long took = ref_decode(all + hlen, total - hlen, ref, &ref_len);

        if (took != (long)(taken - hlen) || ref_len != decoded_len || memcmp(ref, decoded, ref_len) != 0) {
            fprintf(stderr, "decoded %zu bytes ending at %zu; the strict decoder says %ld (%zu decoded)\n",
                    decoded_len, taken - hlen, took, ref_len);
            abort();
        }
    }
    gw_msg_free(&req->out);
    free(req);
    free(all);
    free(ref);
    free(decoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned step;

    if (size < 1)
        return 0;
    step = data[0] % 9; /* 0: whole */
    request_side(data + 1, size - 1, step);
    response_side(data + 1, size - 1, step);
    return 0;
}
