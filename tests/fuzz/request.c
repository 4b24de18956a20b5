/*
 * Fuzz target: the request side of http/request.c (with http/message.c and
 * llhttp under it) as http/client.c drives it: head until it pauses, the
 * checks, the body until the message ends, then the next pipelined request
 * on the same parser. The outcome of every request in the input (status,
 * body length, headers indexed, host and target) must not depend on how the
 * bytes were cut into pieces.
 */
#include "core/gw.h"
#include "http/request.h"
#include "tests/fuzz/fuzz.h"

#define MAX_REQUESTS 8

typedef struct outcome {
    int n;               /* requests seen (the last may be unfinished) */
    int status[MAX_REQUESTS]; /* 0 ok, -1 incomplete, else the answer */
    uint64_t body[MAX_REQUESTS];
    uint32_t nhdrs[MAX_REQUESTS];
    uint32_t host_len[MAX_REQUESTS];
    uint32_t path_len[MAX_REQUESTS];
    uint32_t query_len[MAX_REQUESTS];
    int keepalive[MAX_REQUESTS];
} outcome_t;

static gw_http_loc_t loc; /* client_max_body_size 4096 */

/* What http/exchange.c's reset() does between pipelined requests. */
static void next_request(gw_http_req_t *req)
{
    gw_msg_reset(&req->in);
    llhttp_resume(&req->rq);
    req->body_bytes = 0;
    req->err_status = 0;
    req->rq_state = GW_RQ_HEAD;
    req->pause = GW_PAUSE_NONE;
    req->host_count = req->te_count = 0;
    req->expect_100 = req->conn_close = req->head_lf = 0;
}

/* The head is complete: the helpers routing uses, and their invariants. */
static void look_at_head(gw_http_req_t *req, outcome_t *o)
{
    const gw_msg_t *m = &req->in;
    const char *host;
    uint32_t hlen;
    gw_target_t t;

    FUZZ_ASSERT(m->line_len <= m->len && m->len <= GW_MSG_MAX_TOTAL);
    for (uint32_t i = 0; i < m->n; i++) {
        FUZZ_ASSERT(m->h[i].name + m->h[i].name_len <= m->len);
        FUZZ_ASSERT(m->h[i].value + m->h[i].value_len <= m->len);
    }
    gw_request_host(req, &host, &hlen);
    FUZZ_ASSERT(host == NULL || (host >= m->buf && host + hlen <= m->buf + m->len));
    gw_request_target(req, &t);
    FUZZ_ASSERT(t.path_len > 0 || m->line_len == 0);
    o->host_len[o->n] = hlen;
    o->path_len[o->n] = t.path_len;
    o->query_len[o->n] = t.query_len;
    o->nhdrs[o->n] = m->n;
    o->keepalive[o->n] = req->keepalive;
}

static void run(const uint8_t *data, size_t size, unsigned step, outcome_t *o)
{
    gw_http_req_t *req = calloc(1, sizeof(*req));
    int head_done = 0;
    size_t at = 0;

    memset(o, 0, sizeof(*o));
    req->loc = &loc;
    gw_request_parser_init(req);
    o->status[0] = -1;
    while (at < size && o->n < MAX_REQUESTS) {
        size_t n = fuzz_piece(size - at, step);
        char *piece = fuzz_copy(data + at, n);
        uint32_t off = 0, used = 0;
        int r = 0;

        if (!head_done) {
            r = gw_request_parse_head(req, piece, (uint32_t)n, &off);
            if (r == 0) {
                head_done = 1;
                look_at_head(req, o);
                r = gw_request_check(req);
            }
        }
        if (head_done && r == 0) {
            r = gw_request_parse_body(req, piece + off, (uint32_t)(n - off), &used);
            FUZZ_ASSERT(off + used <= n);
        }
        free(piece);
        if (r == GW_AGAIN) {
            at += n;
            continue;
        }
        o->status[o->n] = r;
        o->body[o->n] = r == 0 ? req->body_bytes : 0; /* how far a refused body got may differ */
        o->n++;
        if (r != 0 || o->n == MAX_REQUESTS)
            break; /* an error answer closes the connection */
        at += off + used;
        next_request(req);
        head_done = 0;
        if (o->n < MAX_REQUESTS)
            o->status[o->n] = -1;
    }
    if (o->n < MAX_REQUESTS && o->status[o->n] == -1)
        o->n++;
    gw_msg_free(&req->in);
    free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static outcome_t whole, cut;

    if (size < 1)
        return 0;
    loc.lc.client_max_body_size = 4096;
    run(data + 1, size - 1, 0, &whole);
    run(data + 1, size - 1, data[0] % 17 + 1, &cut);
    if (memcmp(&whole, &cut, sizeof(whole)) != 0) {
        for (int i = 0; i < MAX_REQUESTS; i++)
            fprintf(stderr, "request %d: status %d/%d body %llu/%llu headers %u/%u (whole/cut by %d)\n", i,
                    whole.status[i], cut.status[i], (unsigned long long)whole.body[i],
                    (unsigned long long)cut.body[i], whole.nhdrs[i], cut.nhdrs[i], data[0] % 17 + 1);
        FUZZ_ASSERT(!"the outcome depends on how the bytes arrive");
    }
    return 0;
}
