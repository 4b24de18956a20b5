/*
 * Tests for http/message.c: the head store and header index fed the way
 * llhttp feeds it (names and values in any number of pieces: every split
 * gives the same result), empty values, trailing whitespace, header ids,
 * the size limits, reuse after reset, and gw_token_list_has.
 */
#include <stdlib.h>
#include <string.h>

#include "http/message.h"
#include "tests/unit/test.h"

typedef struct field {
    const char *name, *value;
    uint8_t id;
    const char *want_value; /* after trimming; NULL = value */
} field_t;

static const char target[] = "/search?q=a+b&lang=en";

static const field_t fields[] = {
    {"Host", "example.com", GW_H_HOST, NULL},
    {"User-Agent", "curl/8.5.0", GW_H_OTHER, NULL},
    {"Accept", "*/*", GW_H_OTHER, NULL},
    {"X-Empty", "", GW_H_OTHER, NULL},
    {"connection", "keep-alive, Upgrade", GW_H_CONNECTION, NULL},
    {"X-Trailing", "value \t \t", GW_H_OTHER, "value"},
    {"X-Inner", "a \t b", GW_H_OTHER, NULL},
    {"X-Spaces", "   ", GW_H_OTHER, ""},
    {"TRANSFER-ENCODING", "chunked", GW_H_TRANSFER_ENCODING, NULL},
    {"Content-length", "12", GW_H_CONTENT_LENGTH, NULL},
    {"X-Bytes", "\x01\x7f\xff", GW_H_OTHER, NULL},
    {"T", "x", GW_H_OTHER, NULL},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* Feed s as pieces cut at `cuts` (positions, ascending, may repeat or be 0/len: empty pieces). */
typedef int (*feeder)(gw_msg_t *m, const char *p, size_t n);

static int feed_cut(gw_msg_t *m, feeder f, const char *s, const size_t *cuts, int ncuts)
{
    size_t len = strlen(s), at = 0;
    int r;

    for (int i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;

        if (end < at)
            end = at;
        if ((r = f(m, s + at, end - at)) != GW_MSG_OK)
            return r;
        at = end;
    }
    return GW_MSG_OK;
}

static int feed_bytes(gw_msg_t *m, feeder f, const char *s)
{
    int r;

    for (size_t i = 0; s[i]; i++)
        if ((r = f(m, s + i, 1)) != GW_MSG_OK)
            return r;
    return GW_MSG_OK;
}

static int line_feeder(gw_msg_t *m, const char *p, size_t n)
{
    return gw_msg_line(m, p, n);
}

/*
 * Feed the whole head. mode 0: each piece whole; mode 1: header `which` cut
 * at name_cut and value_cut; mode 2: every piece byte by byte. Empty values
 * get no value callback at all (as llhttp does) when skip_empty.
 */
static void feed_head(gw_msg_t *m, int mode, size_t which, size_t name_cut, size_t value_cut, int skip_empty)
{
    size_t c;

    if (mode == 2)
        CHECK_INT(feed_bytes(m, line_feeder, target), GW_MSG_OK);
    else
        CHECK_INT(gw_msg_line(m, target, strlen(target)), GW_MSG_OK);
    gw_msg_line_done(m);
    for (size_t i = 0; i < NFIELDS; i++) {
        const field_t *f = &fields[i];

        if (mode == 2) {
            CHECK_INT(feed_bytes(m, gw_msg_field, f->name), GW_MSG_OK);
        } else if (mode == 1 && i == which) {
            c = name_cut;
            CHECK_INT(feed_cut(m, gw_msg_field, f->name, &c, 1), GW_MSG_OK);
        } else {
            CHECK_INT(gw_msg_field(m, f->name, strlen(f->name)), GW_MSG_OK);
        }
        CHECK_INT(gw_msg_field_done(m), GW_MSG_OK);
        if (f->value[0] == '\0' && skip_empty)
            continue;
        if (mode == 2) {
            CHECK_INT(feed_bytes(m, gw_msg_value, f->value), GW_MSG_OK);
        } else if (mode == 1 && i == which) {
            c = value_cut;
            CHECK_INT(feed_cut(m, gw_msg_value, f->value, &c, 1), GW_MSG_OK);
        } else {
            CHECK_INT(gw_msg_value(m, f->value, strlen(f->value)), GW_MSG_OK);
        }
        CHECK_INT(gw_msg_value_done(m), GW_MSG_OK);
    }
}

/* Compare the index with `fields`; returns the number of mismatches (each reported once). */
static int check_index(const gw_msg_t *m)
{
    int bad = 0;

    if (m->line_len != strlen(target) || memcmp(m->buf, target, m->line_len) != 0)
        bad++;
    if (m->n != NFIELDS)
        return bad + 1;
    for (size_t i = 0; i < NFIELDS; i++) {
        const gw_hdr_t *h = &m->h[i];
        const char *want = fields[i].want_value ? fields[i].want_value : fields[i].value;

        if (h->name_len != strlen(fields[i].name) || memcmp(gw_msg_str(m, h->name), fields[i].name, h->name_len))
            bad++;
        if (h->value_len != strlen(want) || memcmp(gw_msg_str(m, h->value), want, h->value_len))
            bad++;
        if (h->id != fields[i].id)
            bad++;
        if (h->value + h->value_len > m->len || h->name + h->name_len > m->len)
            bad++;
    }
    return bad;
}

static void test_whole(void)
{
    gw_msg_t m;

    memset(&m, 0, sizeof(m));
    feed_head(&m, 0, 0, 0, 0, 0);
    CHECK_INT(check_index(&m), 0);
    CHECK_INT(m.n, NFIELDS);
    CHECK_INT(m.line_len, strlen(target));
    /* spot checks, readable */
    CHECK_INT(m.h[0].id, GW_H_HOST);
    CHECK_INT(m.h[0].value_len, 11);
    CHECK(memcmp(gw_msg_str(&m, m.h[0].value), "example.com", 11) == 0);
    CHECK_INT(m.h[3].value_len, 0); /* X-Empty */
    CHECK_INT(m.h[5].value_len, 5); /* "value \t \t" trimmed */
    CHECK_INT(m.h[6].value_len, 5); /* inner whitespace kept */
    CHECK_INT(m.h[7].value_len, 0); /* only spaces: empty */
    CHECK(gw_msg_last(&m) == &m.h[NFIELDS - 1]);

    /* an empty value without any value callback (llhttp's way) */
    gw_msg_reset(&m);
    feed_head(&m, 0, 0, 0, 0, 1);
    CHECK_INT(check_index(&m), 0);
    gw_msg_free(&m);
    CHECK(m.buf == NULL && m.h == NULL);
    CHECK_INT(m.len, 0);
    CHECK_INT(m.n, 0);
}

static void test_every_split(void)
{
    gw_msg_t m;
    int bad = 0, runs = 0;

    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < NFIELDS; i++) {
        size_t nl = strlen(fields[i].name), vl = strlen(fields[i].value);

        for (size_t nc = 0; nc <= nl; nc++) {
            for (size_t vc = 0; vc <= vl; vc++) {
                gw_msg_reset(&m);
                feed_head(&m, 1, i, nc, vc, 0);
                bad += check_index(&m) != 0;
                runs++;
            }
        }
    }
    CHECK_INT(bad, 0);
    CHECK(runs > 100);
    /* every byte its own call */
    gw_msg_reset(&m);
    feed_head(&m, 2, 0, 0, 0, 0);
    CHECK_INT(check_index(&m), 0);
    gw_msg_reset(&m);
    feed_head(&m, 2, 0, 0, 0, 1);
    CHECK_INT(check_index(&m), 0);
    /* the target in pieces too */
    for (size_t cut = 0; cut <= strlen(target); cut++) {
        gw_msg_reset(&m);
        CHECK_INT(feed_cut(&m, line_feeder, target, &cut, 1), GW_MSG_OK);
        gw_msg_line_done(&m);
        CHECK_INT(m.line_len, strlen(target));
        CHECK(memcmp(m.buf, target, m.line_len) == 0);
    }
    gw_msg_free(&m);
}

static void test_classify(void)
{
    static const struct {
        const char *name;
        uint8_t id;
    } cases[] = {
        {"Host", GW_H_HOST},
        {"host", GW_H_HOST},
        {"HOST", GW_H_HOST},
        {"hOsT", GW_H_HOST},
        {"Connection", GW_H_CONNECTION},
        {"CONNECTION", GW_H_CONNECTION},
        {"Keep-Alive", GW_H_KEEP_ALIVE},
        {"keep-alive", GW_H_KEEP_ALIVE},
        {"Proxy-Connection", GW_H_PROXY_CONNECTION},
        {"TE", GW_H_TE},
        {"te", GW_H_TE},
        {"Trailer", GW_H_TRAILER},
        {"Transfer-Encoding", GW_H_TRANSFER_ENCODING},
        {"transfer-encoding", GW_H_TRANSFER_ENCODING},
        {"Upgrade", GW_H_UPGRADE},
        {"Content-Length", GW_H_CONTENT_LENGTH},
        {"CONTENT-LENGTH", GW_H_CONTENT_LENGTH},
        {"Expect", GW_H_EXPECT},
        /* near misses */
        {"Hos", GW_H_OTHER},
        {"Hostx", GW_H_OTHER},
        {"X-Host", GW_H_OTHER},
        {"T", GW_H_OTHER},
        {"TEE", GW_H_OTHER},
        {"Trailers", GW_H_OTHER},
        {"Transfer_Encoding", GW_H_OTHER},
        {"Transfer-Encodings", GW_H_OTHER},
        {"Content-Length2", GW_H_OTHER},
        {"Content-Lengt", GW_H_OTHER},
        {"Keep-Alive-", GW_H_OTHER},
        {"Connectio", GW_H_OTHER},
        {"Proxy-Connectio", GW_H_OTHER},
        {"Expects", GW_H_OTHER},
        {"Upgrade-Insecure-Requests", GW_H_OTHER},
        {"Content-Type", GW_H_OTHER},
    };
    gw_msg_t m;

    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].name);

        gw_msg_reset(&m);
        /* a name split in two must classify as the whole */
        for (size_t cut = 0; cut <= n; cut++) {
            gw_msg_reset(&m);
            CHECK_INT(gw_msg_field(&m, cases[i].name, cut), GW_MSG_OK);
            CHECK_INT(gw_msg_field(&m, cases[i].name + cut, n - cut), GW_MSG_OK);
            gw_msg_field_done(&m);
            if (m.h[0].id != cases[i].id) {
                fprintf(stderr, "  %s (cut %zu): id %u, expected %u\n", cases[i].name, cut, m.h[0].id, cases[i].id);
                CHECK(!"classification");
            }
        }
    }
    gw_msg_free(&m);
}

static void fill(char *p, size_t n, char c)
{
    memset(p, c, n);
}

static void test_limits(void)
{
    gw_msg_t m;
    static char big[GW_MSG_MAX_TOTAL + 16];

    memset(&m, 0, sizeof(m));
    fill(big, sizeof(big), 'a');

    /* the target: 8192 bytes fit, in pieces too; one more does not */
    CHECK_INT(gw_msg_line(&m, big, GW_MSG_MAX_LINE), GW_MSG_OK);
    CHECK_INT(gw_msg_line(&m, big, 1), GW_MSG_TOO_LONG_LINE);
    gw_msg_reset(&m);
    for (int i = 0; i < GW_MSG_MAX_LINE / 64; i++)
        CHECK_INT(gw_msg_line(&m, big, 64), GW_MSG_OK);
    CHECK_INT(gw_msg_line(&m, big, 0), GW_MSG_OK);
    CHECK_INT(gw_msg_line(&m, big, 1), GW_MSG_TOO_LONG_LINE);
    gw_msg_reset(&m);
    CHECK_INT(gw_msg_line(&m, big, GW_MSG_MAX_LINE + 1), GW_MSG_TOO_LONG_LINE);

    /* one header line (name + value): 8192 fit */
    gw_msg_reset(&m);
    CHECK_INT(gw_msg_line(&m, "/", 1), GW_MSG_OK);
    gw_msg_line_done(&m);
    CHECK_INT(gw_msg_field(&m, "X-Big", 5), GW_MSG_OK);
    gw_msg_field_done(&m);
    CHECK_INT(gw_msg_value(&m, big, GW_MSG_MAX_LINE - 5), GW_MSG_OK);
    gw_msg_value_done(&m);
    CHECK_INT(m.h[0].value_len, GW_MSG_MAX_LINE - 5);
    /* ... one more byte does not, whether in the value ... */
    CHECK_INT(gw_msg_field(&m, "X-Big", 5), GW_MSG_OK);
    gw_msg_field_done(&m);
    CHECK_INT(gw_msg_value(&m, big, GW_MSG_MAX_LINE - 5 - 1), GW_MSG_OK);
    CHECK_INT(gw_msg_value(&m, big, 1), GW_MSG_OK);
    CHECK_INT(gw_msg_value(&m, big, 1), GW_MSG_TOO_LONG_LINE);
    /* ... or in the name */
    gw_msg_reset(&m);
    CHECK_INT(gw_msg_field(&m, big, GW_MSG_MAX_LINE), GW_MSG_OK);
    CHECK_INT(gw_msg_field(&m, big, 1), GW_MSG_TOO_LONG_LINE);
    gw_msg_reset(&m);
    for (int i = 0; i < GW_MSG_MAX_LINE; i++)
        CHECK_INT(gw_msg_field(&m, big, 1), GW_MSG_OK);
    CHECK_INT(gw_msg_field(&m, big, 1), GW_MSG_TOO_LONG_LINE);
    /* the target does not count against a header's line */
    gw_msg_reset(&m);
    CHECK_INT(gw_msg_line(&m, big, GW_MSG_MAX_LINE), GW_MSG_OK);
    gw_msg_line_done(&m);
    CHECK_INT(gw_msg_field(&m, big, 10), GW_MSG_OK);
    gw_msg_field_done(&m);
    CHECK_INT(gw_msg_value(&m, big, GW_MSG_MAX_LINE - 10), GW_MSG_OK);
    gw_msg_value_done(&m);

    /* the whole head: 32768 bytes of store fit, one more does not */
    gw_msg_reset(&m);
    CHECK_INT(gw_msg_line(&m, big, 8000), GW_MSG_OK);
    gw_msg_line_done(&m);
    for (int i = 0; i < 3; i++) { /* 3 * (8 + 8000) = 24024 */
        CHECK_INT(gw_msg_field(&m, "X-Header", 8), GW_MSG_OK);
        gw_msg_field_done(&m);
        CHECK_INT(gw_msg_value(&m, big, 8000), GW_MSG_OK);
        gw_msg_value_done(&m);
    }
    CHECK_INT(m.len, 32024);
    CHECK_INT(gw_msg_field(&m, "X-Last", 6), GW_MSG_OK);
    gw_msg_field_done(&m);
    CHECK_INT(gw_msg_value(&m, big, GW_MSG_MAX_TOTAL - 32024 - 6), GW_MSG_OK);
    CHECK_INT(m.len, GW_MSG_MAX_TOTAL);
    CHECK_INT(gw_msg_value(&m, big, 1), GW_MSG_TOO_LARGE);
    CHECK_INT(gw_msg_value(&m, big, 0), GW_MSG_OK);
    gw_msg_value_done(&m);
    CHECK_INT(gw_msg_field(&m, "X", 1), GW_MSG_TOO_LARGE);
    CHECK_INT(m.len, GW_MSG_MAX_TOTAL);

    /* header count: 256 fit, the 257th does not */
    gw_msg_reset(&m);
    for (int i = 0; i < GW_MSG_MAX_HEADERS; i++) {
        CHECK_INT(gw_msg_field(&m, "A", 1), GW_MSG_OK);
        gw_msg_field_done(&m);
        CHECK_INT(gw_msg_value(&m, "1", 1), GW_MSG_OK);
        gw_msg_value_done(&m);
    }
    CHECK_INT(m.n, GW_MSG_MAX_HEADERS);
    CHECK_INT(gw_msg_field(&m, "A", 1), GW_MSG_TOO_LARGE);
    CHECK_INT(m.n, GW_MSG_MAX_HEADERS);
    /* empty-valued headers count too */
    gw_msg_reset(&m);
    for (int i = 0; i < GW_MSG_MAX_HEADERS; i++) {
        CHECK_INT(gw_msg_field(&m, "B", 1), GW_MSG_OK);
        gw_msg_field_done(&m);
    }
    CHECK_INT(gw_msg_field(&m, "B", 1), GW_MSG_TOO_LARGE);
    gw_msg_free(&m);
}

static void test_reuse(void)
{
    gw_msg_t m;
    uint32_t cap;

    memset(&m, 0, sizeof(m));
    feed_head(&m, 0, 0, 0, 0, 0);
    cap = m.cap;
    /* reset keeps the memory, forgets the contents */
    gw_msg_reset(&m);
    CHECK_INT(m.len, 0);
    CHECK_INT(m.n, 0);
    CHECK_INT(m.line_len, 0);
    CHECK_INT(m.cap, cap);
    /* a reset in the middle of a name starts a new header */
    CHECK_INT(gw_msg_field(&m, "Hal", 3), GW_MSG_OK);
    gw_msg_reset(&m);
    feed_head(&m, 0, 0, 0, 0, 0);
    CHECK_INT(check_index(&m), 0);
    for (int i = 0; i < 50; i++) {
        gw_msg_reset(&m);
        feed_head(&m, 0, 0, 0, 0, i % 2);
    }
    CHECK_INT(check_index(&m), 0);
    CHECK_INT(m.cap, cap);
    gw_msg_free(&m);
    gw_msg_free(&m); /* twice: harmless */
}

/*
 * BUG (visible under UBSan only): http/message.c append() (line 40) calls
 * memcpy(m->buf + m->len, p, 0) with m->buf == NULL when zero bytes are
 * appended to a store that never allocated (e.g. an empty reason phrase,
 * "HTTP/1.1 204 \r\n", as the first thing fed to a fresh gw_msg_t): "null
 * pointer passed as argument 1". Harmless in practice, undefined in C;
 * returning early when n == 0 fixes it.
 */
static void test_empty_append(void)
{
    gw_msg_t m;

    memset(&m, 0, sizeof(m));
    CHECK_INT(gw_msg_line(&m, "", 0), GW_MSG_OK);
    gw_msg_line_done(&m);
    CHECK_INT(m.len, 0);
    CHECK_INT(m.line_len, 0);
    CHECK_INT(gw_msg_field(&m, "", 0), GW_MSG_OK);
    CHECK_INT(m.n, 1);
    gw_msg_free(&m);
}

static int has(const char *v, const char *tok)
{
    return gw_token_list_has(v, strlen(v), tok);
}

static void test_token_list(void)
{
    CHECK(has("close", "close"));
    CHECK(has("Close", "close"));
    CHECK(has("CLOSE", "close"));
    CHECK(has("close", "CLOSE"));
    CHECK(has("Keep-Alive, Upgrade", "upgrade"));
    CHECK(has("Keep-Alive, Upgrade", "keep-alive"));
    CHECK(has("Keep-Alive,Upgrade", "Upgrade"));
    CHECK(has("  close  ", "close"));
    CHECK(has("\tclose\t", "close"));
    CHECK(has("a , close , b", "close"));
    CHECK(has(",,close,,", "close"));
    CHECK(has(", , ,close", "close"));
    CHECK(has("x, y, close", "close"));
    CHECK(has("gzip, chunked", "chunked"));
    /* not there */
    CHECK(!has("", "close"));
    CHECK(!has(",", "close"));
    CHECK(!has(" , ", "close"));
    CHECK(!has("closed", "close"));
    CHECK(!has("close-ish", "close"));
    CHECK(!has("xclose", "close"));
    CHECK(!has("clos", "close"));
    CHECK(!has("close x", "close")); /* one token "close x", not "close" */
    CHECK(!has("keep-alive", "close"));
    CHECK(!has("Keep-Alive, Upgrade", "alive"));
    CHECK(!has("Keep-Alive, Upgrade", "keep"));
    CHECK(!has("\"close\"", "close"));
    CHECK(!has("chunkedgzip", "chunked"));
    /* the length bounds the search: a token past it is not seen */
    CHECK(gw_token_list_has("close, upgrade", 5, "close"));
    CHECK(!gw_token_list_has("close, upgrade", 4, "close"));
    CHECK(!gw_token_list_has("keep, close", 4, "close"));
    CHECK(gw_token_list_has("keep, close", 11, "close"));
    CHECK(!gw_token_list_has("keep, closed", 11, "closed"));
}

/* large_client_header_buffers: the limits a message is given replace the defaults, and survive a reset. */
static void test_configured_limits(void)
{
    gw_msg_t m;
    static char big[4096];

    memset(&m, 0, sizeof(m));
    fill(big, sizeof(big), 'a');
    m.max_line = 1024;
    m.max_total = 2048;
    CHECK_INT(gw_msg_line(&m, big, 1024), GW_MSG_OK);
    CHECK_INT(gw_msg_line(&m, big, 1), GW_MSG_TOO_LONG_LINE);
    gw_msg_reset(&m);
    CHECK_INT(m.max_line, 1024);
    CHECK_INT(gw_msg_line(&m, "/", 1), GW_MSG_OK);
    gw_msg_line_done(&m);
    CHECK_INT(gw_msg_field(&m, "X-A", 3), GW_MSG_OK);
    gw_msg_field_done(&m);
    CHECK_INT(gw_msg_value(&m, big, 1021), GW_MSG_OK);
    CHECK_INT(gw_msg_value(&m, big, 1), GW_MSG_TOO_LONG_LINE);
    gw_msg_reset(&m);
    /* the total: 2048 bytes of target, names and values */
    CHECK_INT(gw_msg_line(&m, "/", 1), GW_MSG_OK);
    gw_msg_line_done(&m);
    CHECK_INT(gw_msg_field(&m, "X-A", 3), GW_MSG_OK);
    gw_msg_field_done(&m);
    CHECK_INT(gw_msg_value(&m, big, 1000), GW_MSG_OK);
    gw_msg_value_done(&m);
    CHECK_INT(gw_msg_field(&m, "X-B", 3), GW_MSG_OK);
    gw_msg_field_done(&m);
    CHECK_INT(gw_msg_value(&m, big, 1000), GW_MSG_OK);
    gw_msg_value_done(&m);
    CHECK_INT(gw_msg_field(&m, "X-C", 3), GW_MSG_OK);
    gw_msg_field_done(&m);
    CHECK_INT(gw_msg_value(&m, big, 38), GW_MSG_OK);
    CHECK_INT(gw_msg_value(&m, big, 1), GW_MSG_TOO_LARGE);
    gw_msg_free(&m);
}

int main(void)
{
    RUN(test_configured_limits);
    RUN(test_whole);
    RUN(test_every_split);
    RUN(test_classify);
    RUN(test_limits);
    RUN(test_reuse);
    RUN(test_empty_append);
    RUN(test_token_list);
    return gw_test_done();
}
