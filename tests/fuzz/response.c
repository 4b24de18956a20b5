/*
 * Fuzz target: the upstream's response head (http/response.c callbacks over
 * llhttp) and the head we build from it for the client
 * (gw_response_client_head), as http/proxy.c drives them. The first byte
 * chooses the piece size and the request it answers (HEAD or not, an
 * HTTP/1.0 client, keep-alive). Invariants:
 *  - the outcome does not depend on how the bytes were cut;
 *  - the client head parses strictly as one response head with the same
 *    status, exactly one Connection field, and never both Content-Length
 *    and Transfer-Encoding (the client must see one framing).
 */
#include <strings.h>

#include "core/gw.h"
#include "http/headers.h"
#include "http/response.h"
#include "tests/fuzz/fuzz.h"

typedef struct outcome {
    int state; /* 0 incomplete head, 1 head done, 2 error */
    unsigned status;
    uint32_t nhdrs;
    uint32_t reason_len;
    size_t head_used; /* bytes of the input the head took */
} outcome_t;

typedef struct reread {
    int headers_done;
    uint32_t n_conn, n_cl, n_te;
    char field[32];
    uint32_t field_len;
} reread_t;

static int rr_field(llhttp_t *p, const char *at, size_t n)
{
    reread_t *r = p->data;
    size_t room = sizeof(r->field) - r->field_len;

    memcpy(r->field + r->field_len, at, n < room ? n : room);
    r->field_len += (uint32_t)(n < room ? n : room);
    return 0;
}

static int is(const reread_t *r, const char *name)
{
    return r->field_len == strlen(name) && strncasecmp(r->field, name, r->field_len) == 0;
}

static int rr_field_done(llhttp_t *p)
{
    reread_t *r = p->data;

    r->n_conn += is(r, "connection");
    r->n_cl += is(r, "content-length");
    r->n_te += is(r, "transfer-encoding");
    r->field_len = 0;
    return 0;
}

static int rr_headers_done(llhttp_t *p)
{
    ((reread_t *)p->data)->headers_done = 1;
    return HPE_PAUSED;
}

/* The client head for this response: must parse back as described above. */
static void check_client_head(gw_http_req_t *req)
{
    static llhttp_settings_t s;
    reread_t r;
    llhttp_t p;
    llhttp_errno_t e;
    uint32_t len;
    char *head;

    req->dechunk = (req->rs.flags & F_CHUNKED) && !(req->rs.flags & F_SKIPBODY) && req->rq.http_minor == 0;
    head = gw_response_client_head(req, &len);
    FUZZ_ASSERT(head != NULL);
    if (s.on_header_field == NULL) {
        llhttp_settings_init(&s);
        s.on_header_field = rr_field;
        s.on_header_field_complete = rr_field_done;
        s.on_headers_complete = rr_headers_done;
    }
    memset(&r, 0, sizeof(r));
    llhttp_init(&p, HTTP_RESPONSE, &s);
    p.data = &r;
    e = llhttp_execute(&p, head, len);
    if (e != HPE_PAUSED || !r.headers_done) {
        fprintf(stderr, "client head does not parse: %s (%s)\n%.*s\n", llhttp_errno_name(e),
                llhttp_get_error_reason(&p), (int)len, head);
        abort();
    }
    FUZZ_ASSERT(llhttp_get_error_pos(&p) == head + len);
    FUZZ_ASSERT(p.status_code == req->status);
    FUZZ_ASSERT(r.n_conn == 1);
    FUZZ_ASSERT(r.n_te <= 1 && !(r.n_te && r.n_cl));
    free(head);
}

static void run(const uint8_t *data, size_t size, unsigned step, uint8_t shape, outcome_t *o)
{
    static gw_http_srv_t srv; /* nginx's default header settings */
    gw_http_req_t *req = calloc(1, sizeof(*req));
    size_t at = 0;

    if (srv.hconf == NULL) {
        gw_conf_err_t err;

        FUZZ_ASSERT(gw_headers_conf_finish(&srv, NULL, NULL, &err) == 0);
    }
    req->srv = &srv;

    memset(o, 0, sizeof(*o));
    req->is_head = shape & 1;
    req->rq.http_minor = (shape & 2) ? 0 : 1;
    req->keepalive = (shape & 4) != 0;
    gw_response_parser_init(req);
    while (at < size) {
        size_t n = fuzz_piece(size - at, step);
        char *piece = fuzz_copy(data + at, n);
        llhttp_errno_t e;

        req->pause = GW_PAUSE_NONE;
        e = llhttp_execute(&req->rs, piece, n);
        /* proxy.c's own check of the head bytes llhttp took (whitespace a lenient llhttp lets by) */
        if ((e == HPE_OK || (e == HPE_PAUSED && req->pause == GW_PAUSE_HEADERS)) &&
            gw_response_check_head(req, piece, e == HPE_OK ? (uint32_t)n
                                                           : (uint32_t)(llhttp_get_error_pos(&req->rs) - piece)) < 0)
            e = HPE_USER;
        if (e == HPE_PAUSED && req->pause == GW_PAUSE_HEADERS) {
            o->state = 1;
            o->head_used = at + (size_t)(llhttp_get_error_pos(&req->rs) - piece);
        } else if (e != HPE_OK) {
            o->state = 2;
        }
        free(piece);
        if (e != HPE_OK)
            break;
        at += n;
    }
    if (o->state == 1) {
        o->status = req->status;
        o->nhdrs = req->out.n;
        o->reason_len = req->out.line_len;
        check_client_head(req);
    }
    gw_msg_free(&req->out);
    free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome_t whole, cut;

    if (size < 1)
        return 0;
    run(data + 1, size - 1, 0, data[0], &whole);
    run(data + 1, size - 1, (data[0] >> 3) % 13 + 1, data[0], &cut);
    FUZZ_ASSERT(memcmp(&whole, &cut, sizeof(whole)) == 0);
    return 0;
}
