/*
 * Tests for http/access.c: parsing of "all", addresses and CIDRs (IPv4 and
 * IPv6, host bits cleared, bad prefixes refused), and matching in order,
 * first rule wins, IPv4-mapped IPv6 clients meeting the IPv4 rules.
 */
#include <arpa/inet.h>
#include <string.h>

#include "http/access.h"
#include "tests/unit/test.h"

static gw_peer_addr_t peer(const char *text)
{
    gw_peer_addr_t p = {0};

    if (inet_pton(AF_INET, text, p.addr) == 1)
        p.family = AF_INET;
    else if (inet_pton(AF_INET6, text, p.addr) == 1)
        p.family = AF_INET6;
    return p;
}

/* Is `client` allowed by the rules written as "allow X" / "deny X" strings? */
static int allowed(const char *const *rules, const char *client)
{
    gw_access_rule_t r[16];
    uint32_t n = 0;
    gw_peer_addr_t p = peer(client);

    for (; rules[n]; n++)
        CHECK_INT(gw_access_parse(rules[n] + (rules[n][0] == 'd' ? 5 : 6), rules[n][0] == 'd', &r[n]), 0);
    return gw_access_allowed(r, n, &p);
}

static void test_parse(void)
{
    gw_access_rule_t r;
    static const char *const bad[] = {"", "foo", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::1/129", "1.2.3",
                                      "10.0.0.0/8/8", "[::1]", "/8", NULL};

    CHECK_INT(gw_access_parse("all", 1, &r), 0);
    CHECK_INT(r.family, 0);
    CHECK_INT(r.deny, 1);
    CHECK_INT(gw_access_parse("10.1.2.3/8", 0, &r), 0);
    CHECK_INT(r.family, AF_INET);
    CHECK_INT(r.addr[0], 10);
    CHECK_INT(r.addr[1], 0); /* host bits cleared */
    CHECK_INT(r.mask[0], 0xff);
    CHECK_INT(r.mask[1], 0);
    CHECK_INT(gw_access_parse("192.168.1.0/20", 0, &r), 0);
    CHECK_INT(r.mask[2], 0xf0);
    CHECK_INT(r.addr[2], 0);
    CHECK_INT(gw_access_parse("2001:db8::/32", 0, &r), 0);
    CHECK_INT(r.family, AF_INET6);
    CHECK_INT(r.mask[3], 0xff);
    CHECK_INT(r.mask[4], 0);
    CHECK_INT(gw_access_parse("::1", 0, &r), 0);
    CHECK_INT(r.mask[15], 0xff);
    for (int i = 0; bad[i]; i++)
        CHECK_INT(gw_access_parse(bad[i], 0, &r), -1);
}

static void test_match(void)
{
    static const char *const none[] = {NULL};
    static const char *const deny_all[] = {"deny all", NULL};
    static const char *const first[] = {"allow 127.0.0.1", "deny all", NULL};
    static const char *const order[] = {"deny 127.0.0.1", "allow 127.0.0.1", NULL};
    static const char *const nets[] = {"allow 10.0.0.0/8", "allow 192.168.0.0/16", "deny all", NULL};
    static const char *const v6[] = {"allow 2001:db8::/32", "deny ::/0", NULL};
    static const char *const zero[] = {"deny 0.0.0.0/0", NULL};

    CHECK(allowed(none, "1.2.3.4"));
    CHECK(!allowed(deny_all, "1.2.3.4"));
    CHECK(!allowed(deny_all, "::1"));
    CHECK(allowed(first, "127.0.0.1"));
    CHECK(!allowed(first, "127.0.0.2"));
    CHECK(!allowed(order, "127.0.0.1"));
    CHECK(allowed(nets, "10.255.0.1"));
    CHECK(allowed(nets, "192.168.77.1"));
    CHECK(!allowed(nets, "192.169.0.1"));
    CHECK(!allowed(nets, "11.0.0.1"));
    CHECK(allowed(v6, "2001:db8:1::5"));
    CHECK(!allowed(v6, "2001:db9::5"));
    CHECK(allowed(v6, "10.0.0.1")); /* IPv6 rules say nothing about IPv4 clients */
    CHECK(!allowed(zero, "8.8.8.8"));
    CHECK(allowed(zero, "::2"));
    /* An IPv4 client seen on an IPv6 socket meets the IPv4 rules. */
    CHECK(allowed(first, "::ffff:127.0.0.1"));
    CHECK(!allowed(first, "::ffff:127.0.0.2"));
    CHECK(allowed(nets, "::ffff:10.1.1.1"));
}

int main(void)
{
    RUN(test_parse);
    RUN(test_match);
    return gw_test_done();
}
