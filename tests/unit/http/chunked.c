/*
 * Tests for http/chunked.c: a table of chunked bodies, good and bad, each
 * scanned whole and then cut in two at every byte: where the body ends (or
 * the first byte refused) must not depend on how the bytes arrive.
 */
#include <string.h>

#include "http/chunked.h"
#include "tests/unit/test.h"

#define BAD (-1)
#define MORE (-2)

typedef struct ccase {
    const char *name;
    const char *text;
    int end; /* bytes up to the end of the body, BAD or MORE */
} ccase_t;

static const ccase_t cases[] = {
    {"one chunk", "5\r\nhello\r\n0\r\n\r\n", 15},
    {"two chunks, hex sizes", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", 35},
    {"upper and lower hex", "F\r\n0123456789abcde\r\n0\r\n\r\n", 25},
    {"extensions", "5;a=b;c=\"d e\"\r\nhello\r\n0;z\r\n\r\n", 29},
    {"BWS before an extension", "5 \t;a\r\nhello\r\n0\r\n\r\n", 19},
    {"trailers", "5\r\nhello\r\n0\r\nX-T: 1\r\nY:\r\n\r\n", 27},
    {"bytes after the end are not ours", "0\r\n\r\nGET / HTTP/1.1\r\n", 5},
    {"leading zeros", "0005\r\nhello\r\n0000\r\n\r\n", 21},
    {"unfinished", "5\r\nhel", MORE},
    {"unfinished trailer", "0\r\nX-T: 1\r\n", MORE},
    {"not hex", "zz\r\nhello\r\n0\r\n\r\n", BAD},
    {"a sign", "+5\r\nhello\r\n0\r\n\r\n", BAD},
    {"0x", "0x5\r\nhello\r\n0\r\n\r\n", BAD},
    {"no size", "\r\nhello\r\n0\r\n\r\n", BAD},
    {"overflowing", "10000000000000005\r\nhello\r\n0\r\n\r\n", BAD},
    {"data longer than declared", "3\r\nhello\r\n0\r\n\r\n", BAD},
    {"bare LF after the size", "5\nhello\r\n0\r\n\r\n", BAD},
    {"bare LF after the data", "5\r\nhello\n0\r\n\r\n", BAD},
    {"CR CR at the end", "5\r\nhello\r\n0\r\n\r\r", BAD},
    {"space after the size", "5 \r\nhello\r\n0\r\n\r\n", BAD},
    {"LF inside an extension", "5;a=\"\n\"\r\nhello\r\n0\r\n\r\n", BAD},
    {"trailer without colon", "0\r\nX-T\r\n\r\n", BAD},
    {"trailer with a space in the name", "0\r\nX T: 1\r\n\r\n", BAD},
    {"NUL in a trailer", "0\r\nX-T: a\0b\r\n\r\n", BAD},
};

/* Scan text[0..len) cut at `cut` (0: whole): the end, BAD or MORE. */
static int scan(const char *text, size_t len, size_t cut)
{
    gw_chunked_t c;
    int r;

    gw_chunked_init(&c);
    if (cut == 0)
        return gw_chunked_scan(&c, text, (uint32_t)len);
    r = gw_chunked_scan(&c, text, (uint32_t)cut);
    if (r != GW_CHUNKED_MORE)
        return r;
    r = gw_chunked_scan(&c, text + cut, (uint32_t)(len - cut));
    return r >= 0 ? (int)cut + r : r;
}

static size_t length(const ccase_t *k)
{
    /* "NUL in a trailer" holds a NUL: its length runs to the final CRLF CRLF */
    const char *t = k->text;
    size_t n = strlen(t);

    if (strcmp(k->name, "NUL in a trailer") == 0)
        n = sizeof("0\r\nX-T: a\0b\r\n\r\n") - 1;
    return n;
}

static void test_table(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ccase_t *k = &cases[i];
        size_t len = length(k);

        for (size_t cut = 0; cut < len; cut++) {
            int got = scan(k->text, len, cut);

            if (got != k->end) {
                fprintf(stderr, "  \"%s\" cut at %zu: %d, expected %d\n", k->name, cut, got, k->end);
                CHECK(!"table outcome");
                break;
            }
            CHECK(1);
        }
    }
}

/* Nothing may follow the end within the same body. */
static void test_after_the_end(void)
{
    gw_chunked_t c;

    gw_chunked_init(&c);
    CHECK_INT(gw_chunked_scan(&c, "0\r\n\r\n", 5), 5);
    CHECK_INT(gw_chunked_scan(&c, "x", 1), BAD);
}

/* An extension or a trailer line longer than GW_CHUNKED_MAX_LINE is refused. */
static void test_long_lines(void)
{
    static char buf[GW_CHUNKED_MAX_LINE + 64];
    gw_chunked_t c;

    memset(buf, 'a', sizeof(buf));
    buf[0] = '1';
    buf[1] = ';';
    gw_chunked_init(&c);
    CHECK_INT(gw_chunked_scan(&c, buf, 2 + GW_CHUNKED_MAX_LINE), MORE);
    CHECK_INT(gw_chunked_scan(&c, buf, 1), BAD);
}

int main(void)
{
    RUN(test_table);
    RUN(test_after_the_end);
    RUN(test_long_lines);
    return gw_test_done();
}
