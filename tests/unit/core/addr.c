/*
 * Tests for core/addr.c: addresses as nginx writes them ("80", "*:80",
 * "127.0.0.1:8080", "[::1]:80", "localhost:3000"), default ports, invalid
 * ports, IPv6 without brackets, formatting round trips and equality. Only
 * names in /etc/hosts ("localhost") are resolved: no DNS traffic.
 */
#include <arpa/inet.h>
#include <stdlib.h>

/* the source under test, for its static split_host_port ("core/addr.c" would find this file) */
#include "../../../core/addr.c"
#include "tests/unit/test.h"

/* Resolve and format the first address ("" on failure, with why in *whyp). */
static const char *fmt1(const char *text, uint16_t dflt, int bare, const char **whyp)
{
    static char buf[128];
    gw_addr_t a[4];
    const char *why = NULL;
    int n = gw_addr_resolve(text, dflt, bare, a, 4, &why);

    if (whyp)
        *whyp = why;
    if (n < 1)
        return "";
    gw_addr_format(&a[0], buf, sizeof(buf));
    return buf;
}

/* The reason text fails ("" when it resolves). */
static const char *why_of(const char *text, uint16_t dflt, int bare)
{
    const char *why = NULL;

    if (*fmt1(text, dflt, bare, &why) != '\0')
        return "";
    return why ? why : "(null)";
}

static void test_bare_port(void)
{
    gw_addr_t a[2];
    const char *why;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a[0].ss;

    CHECK_INT(gw_addr_resolve("80", 0, 1, a, 2, &why), 1);
    CHECK_INT(a[0].ss.ss_family, AF_INET);
    CHECK_INT(a[0].len, sizeof(struct sockaddr_in));
    CHECK_INT(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    CHECK_INT(gw_addr_port(&a[0]), 80);
    CHECK_STR(fmt1("80", 0, 1, NULL), "0.0.0.0:80");
    CHECK_STR(fmt1("8080", 80, 1, NULL), "0.0.0.0:8080");
    CHECK_STR(fmt1("65535", 80, 1, NULL), "0.0.0.0:65535");
    CHECK_STR(fmt1("1", 80, 1, NULL), "0.0.0.0:1");
    CHECK_STR(fmt1("00080", 80, 1, NULL), "0.0.0.0:80");
    /* out of range */
    CHECK_STR(why_of("0", 80, 1), "invalid port");
    CHECK_STR(why_of("65536", 80, 1), "invalid port");
    CHECK_STR(why_of("99999999999999999999999", 80, 1), "invalid port");
}

static void test_host_port(void)
{
    gw_addr_t a[4];
    const char *why;
    int n;

    CHECK_STR(fmt1("127.0.0.1:8080", 80, 0, NULL), "127.0.0.1:8080");
    CHECK_STR(fmt1("127.0.0.1:8080", 80, 1, NULL), "127.0.0.1:8080");
    CHECK_STR(fmt1("10.1.2.3:1", 0, 0, NULL), "10.1.2.3:1");
    CHECK_STR(fmt1("*:80", 0, 1, NULL), "0.0.0.0:80");
    CHECK_STR(fmt1("*:443", 0, 0, NULL), "0.0.0.0:443");
    CHECK_STR(fmt1("0.0.0.0:81", 0, 0, NULL), "0.0.0.0:81");
    CHECK_STR(fmt1("[::1]:80", 0, 0, NULL), "[::1]:80");
    CHECK_STR(fmt1("[::]:8443", 0, 1, NULL), "[::]:8443");
    CHECK_STR(fmt1("[2001:db8::5]:65535", 0, 0, NULL), "[2001:db8::5]:65535");

    n = gw_addr_resolve("[::1]:80", 0, 0, a, 4, &why);
    CHECK_INT(n, 1);
    CHECK_INT(a[0].ss.ss_family, AF_INET6);
    CHECK_INT(a[0].len, sizeof(struct sockaddr_in6));
    CHECK_INT(gw_addr_port(&a[0]), 80);

    /* a name from /etc/hosts: every address it has, each with the port */
    n = gw_addr_resolve("localhost:3000", 0, 0, a, 4, &why);
    CHECK(n >= 1);
    for (int i = 0; i < n && i < 4; i++) {
        char buf[64];

        CHECK_INT(gw_addr_port(&a[i]), 3000);
        gw_addr_format(&a[i], buf, sizeof(buf));
        CHECK(strcmp(buf, "127.0.0.1:3000") == 0 || strcmp(buf, "[::1]:3000") == 0);
        for (int j = 0; j < i; j++)
            CHECK(!gw_addr_equal(&a[i], &a[j])); /* no duplicates */
    }
    /* at most `max` */
    CHECK_INT(gw_addr_resolve("localhost:3000", 0, 0, a, 1, &why), 1);
}

static void test_default_port(void)
{
    CHECK_STR(fmt1("127.0.0.1", 80, 0, NULL), "127.0.0.1:80");
    CHECK_STR(fmt1("127.0.0.1", 8000, 1, NULL), "127.0.0.1:8000");
    CHECK_STR(fmt1("[::1]", 443, 0, NULL), "[::1]:443");
    CHECK_STR(fmt1("*", 80, 0, NULL), "0.0.0.0:80");
    CHECK_STR(fmt1("localhost", 3001, 0, NULL), fmt1("localhost:3001", 0, 0, NULL));
    /* no port anywhere */
    CHECK_STR(why_of("127.0.0.1", 0, 0), "no port");
    CHECK_STR(why_of("[::1]", 0, 0), "no port");
    /* a bare number is a host when it is not a listen address (inet_aton's "80" = 0.0.0.80) */
    CHECK_STR(fmt1("80", 8080, 0, NULL), "0.0.0.80:8080");
}

static void test_invalid(void)
{
    CHECK_STR(why_of("127.0.0.1:0", 80, 0), "invalid port");
    CHECK_STR(why_of("127.0.0.1:65536", 80, 0), "invalid port");
    CHECK_STR(why_of("127.0.0.1:x", 80, 0), "invalid port");
    CHECK_STR(why_of("localhost:x", 80, 0), "invalid port");
    CHECK_STR(why_of("127.0.0.1:", 80, 0), "invalid port");
    CHECK_STR(why_of("127.0.0.1:80x", 80, 0), "invalid port");
    CHECK_STR(why_of("127.0.0.1:-1", 80, 0), "invalid port");
    CHECK_STR(why_of("127.0.0.1:+80", 80, 0), "invalid port");
    CHECK_STR(why_of("127.0.0.1: 80", 80, 0), "invalid port");
    CHECK_STR(why_of("[::1]:0", 80, 0), "invalid port");
    CHECK_STR(why_of("[::1]:", 80, 0), "invalid port");
    CHECK_STR(why_of("*:0", 80, 1), "invalid port");
    /* bare IPv6 without brackets: ambiguous, refused before any lookup */
    CHECK_STR(why_of("::1", 80, 0), "invalid address");
    CHECK_STR(why_of("::1:80", 80, 0), "invalid address");
    CHECK_STR(why_of("2001:db8::1", 80, 1), "invalid address");
    CHECK_STR(why_of("::", 80, 1), "invalid address");
    /* brackets: unclosed, junk after */
    CHECK_STR(why_of("[::1", 80, 0), "invalid address");
    CHECK_STR(why_of("[::1]80", 80, 0), "invalid address");
    CHECK_STR(why_of("[::1]x:80", 80, 0), "invalid address");
    /* no host */
    CHECK_STR(why_of(":80", 0, 0), "no host");
    CHECK_STR(why_of("[]:80", 0, 0), "no host");
    CHECK_STR(why_of("", 80, 0), "no host");
    CHECK_STR(why_of("", 80, 1), "no host");
}

static void test_split(void)
{
    char host[8];
    const char *port;

    CHECK_INT(split_host_port("abc:12", host, sizeof(host), &port), 0);
    CHECK_STR(host, "abc");
    CHECK_STR(port, "12");
    CHECK_INT(split_host_port("abc", host, sizeof(host), &port), 0);
    CHECK_STR(host, "abc");
    CHECK(port == NULL);
    CHECK_INT(split_host_port("[::1]:9", host, sizeof(host), &port), 0);
    CHECK_STR(host, "::1");
    CHECK_STR(port, "9");
    /* a host longer than the buffer is refused, not truncated */
    CHECK_INT(split_host_port("abcdefgh:1", host, sizeof(host), &port), -1);
    CHECK_INT(split_host_port("abcdefg:1", host, sizeof(host), &port), 0);
    CHECK_INT(split_host_port("[abcdefgh]:1", host, sizeof(host), &port), -1);
    {
        char longname[400];

        memset(longname, 'a', sizeof(longname));
        strcpy(longname + 300, ":80");
        CHECK_STR(why_of(longname, 0, 0), "invalid address");
    }
}

static void test_format(void)
{
    static const char *const texts[] = {"127.0.0.1:8080", "0.0.0.0:1",        "255.255.255.255:65535",   "[::1]:80",
                                        "[::]:443",       "[fe80::1:2]:8000", "[2001:db8:0:1:1:1:1:1]:9"};
    char buf[128], small[8];
    gw_addr_t a, b;
    const char *why;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t n;

        CHECK_INT(gw_addr_resolve(texts[i], 0, 0, &a, 1, &why), 1);
        n = gw_addr_format(&a, buf, sizeof(buf));
        CHECK_STR(buf, texts[i]);
        CHECK_INT(n, strlen(texts[i]));
        /* round trip: the formatted text resolves to the same address */
        CHECK_INT(gw_addr_resolve(buf, 0, 0, &b, 1, &why), 1);
        CHECK(gw_addr_equal(&a, &b));
    }
    /* truncated: still NUL-terminated, the length says what was written */
    gw_addr_resolve("127.0.0.1:8080", 0, 0, &a, 1, &why);
    CHECK_INT(gw_addr_format(&a, small, sizeof(small)), 7);
    CHECK_STR(small, "127.0.0");
    CHECK_INT(gw_addr_format(&a, small, 1), 0);
    CHECK_STR(small, "");
    /* Regression, fixed: core/addr.c gw_addr_format returns `size - 1` for a truncated
     * write, which is SIZE_MAX when size == 0 (nothing can be written; expected 0) */
    CHECK_INT(gw_addr_format(&a, small, 0), 0);
}

static void test_equal(void)
{
    gw_addr_t a, b, c, d, e;
    const char *why;

    gw_addr_resolve("127.0.0.1:80", 0, 0, &a, 1, &why);
    gw_addr_resolve("127.0.0.1", 80, 0, &b, 1, &why);
    gw_addr_resolve("127.0.0.1:81", 0, 0, &c, 1, &why);
    gw_addr_resolve("127.0.0.2:80", 0, 0, &d, 1, &why);
    gw_addr_resolve("[::ffff:127.0.0.1]:80", 0, 0, &e, 1, &why);
    CHECK(gw_addr_equal(&a, &a));
    CHECK(gw_addr_equal(&a, &b));
    CHECK(gw_addr_equal(&b, &a));
    CHECK(!gw_addr_equal(&a, &c));
    CHECK(!gw_addr_equal(&a, &d));
    CHECK(!gw_addr_equal(&a, &e)); /* a v4-mapped v6 address is another address family */
    CHECK_INT(gw_addr_port(&c), 81);

    gw_addr_resolve("[::1]:80", 0, 0, &a, 1, &why);
    gw_addr_resolve("[0:0::1]:80", 0, 0, &b, 1, &why);
    gw_addr_resolve("[::1]:8080", 0, 0, &c, 1, &why);
    CHECK(gw_addr_equal(&a, &b));
    CHECK(!gw_addr_equal(&a, &c));

    /* "*:80" and "80" (listen) are the same wildcard */
    gw_addr_resolve("*:80", 0, 1, &a, 1, &why);
    gw_addr_resolve("80", 0, 1, &b, 1, &why);
    gw_addr_resolve("0.0.0.0:80", 0, 1, &c, 1, &why);
    CHECK(gw_addr_equal(&a, &b));
    CHECK(gw_addr_equal(&a, &c));
}

int main(void)
{
    RUN(test_bare_port);
    RUN(test_host_port);
    RUN(test_default_port);
    RUN(test_invalid);
    RUN(test_split);
    RUN(test_format);
    RUN(test_equal);
    return gw_test_done();
}
