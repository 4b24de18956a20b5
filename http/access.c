/*
 * allow / deny: a list of rules per level, checked in order, the first
 * matching one decides (nginx's ngx_http_access_module). A level with no
 * rules of its own inherits its parent's list whole.
 */
#include "access.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int gw_access_parse(const char *text, int deny, gw_access_rule_t *r)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    unsigned bits, max;

    memset(r, 0, sizeof(*r));
    r->deny = (uint8_t)deny;
    if (strcmp(text, "all") == 0)
        return 0;
    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, r->addr) == 1) {
        r->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, r->addr) == 1) {
        r->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    bits = max;
    if (slash) {
        char *end;
        unsigned long v;

        if (slash[1] < '0' || slash[1] > '9')
            return -1;
        v = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || v > max)
            return -1;
        bits = (unsigned)v;
    }
    for (unsigned i = 0; i < max / 8; i++) {
        unsigned take = bits >= 8 * (i + 1) ? 8 : (bits > 8 * i ? bits - 8 * i : 0);

        r->mask[i] = (uint8_t)(take ? 0xff << (8 - take) : 0);
        r->addr[i] &= r->mask[i];
    }
    return 0;
}

static int match(const gw_access_rule_t *r, int family, const uint8_t *addr)
{
    unsigned n = family == AF_INET ? 4 : 16;

    if (r->family == 0)
        return 1;
    if (r->family != family)
        return 0;
    for (unsigned i = 0; i < n; i++)
        if ((addr[i] & r->mask[i]) != r->addr[i])
            return 0;
    return 1;
}

int gw_access_allowed(const gw_access_rule_t *rules, uint32_t n, const gw_peer_addr_t *peer)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int family = peer->family;
    const uint8_t *addr = peer->addr;

    /* An IPv4 client on an IPv6 socket (::ffff:a.b.c.d) meets the IPv4 rules, as in nginx. */
    if (family == AF_INET6 && memcmp(addr, v4mapped, 12) == 0) {
        family = AF_INET;
        addr += 12;
    }
    for (uint32_t i = 0; i < n; i++)
        if (match(&rules[i], family, addr))
            return !rules[i].deny;
    return 1;
}
