#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *port)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return -1;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Split "host:port", "[v6]:port", "host" into host and port strings in buf. */
static int split_host_port(const char *text, char *host, size_t hsize, const char **port)
{
    const char *colon;
    size_t hlen;

    *port = NULL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');

        if (close == NULL)
            return -1;
        hlen = (size_t)(close - text - 1);
        if (close[1] == ':')
            *port = close + 2;
        else if (close[1] != '\0')
            return -1;
        if (hlen >= hsize)
            return -1;
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        return 0;
    }
    colon = strrchr(text, ':');
    if (colon != NULL && strchr(text, ':') != colon)
        return -1; /* bare IPv6 without brackets is ambiguous */
    hlen = colon ? (size_t)(colon - text) : strlen(text);
    if (hlen >= hsize)
        return -1;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (colon)
        *port = colon + 1;
    return 0;
}

int gw_addr_resolve(const char *text, uint16_t default_port, int bare_port_is_wildcard, gw_addr_t *out, int max,
                    const char **why)
{
    char host[256];
    const char *port_s;
    uint16_t port = default_port;
    struct addrinfo hints, *res, *ai;
    int n = 0;

    *why = "invalid address";
    if (bare_port_is_wildcard && all_digits(text)) {
        if (parse_port(text, &port) < 0) {
            *why = "invalid port";
            return -1;
        }
        strcpy(host, "*");
    } else {
        if (split_host_port(text, host, sizeof(host), &port_s) < 0)
            return -1;
        if (port_s && parse_port(port_s, &port) < 0) {
            *why = "invalid port";
            return -1;
        }
        if (port == 0) {
            *why = "no port";
            return -1;
        }
    }
    if (host[0] == '\0') {
        *why = "no host";
        return -1;
    }
    if (strcmp(host, "*") == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out[0].ss;

        memset(&out[0], 0, sizeof(out[0]));
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        out[0].len = sizeof(*sin);
        return 1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        *why = "host not found";
        return -1;
    }
    for (ai = res; ai && n < max; ai = ai->ai_next) {
        int dup = 0;

        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
        out[n].len = (socklen_t)ai->ai_addrlen;
        if (ai->ai_family == AF_INET)
            ((struct sockaddr_in *)&out[n].ss)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)&out[n].ss)->sin6_port = htons(port);
        for (int i = 0; i < n; i++)
            dup |= gw_addr_equal(&out[i], &out[n]);
        if (!dup)
            n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        *why = "host not found";
        return -1;
    }
    return n;
}

size_t gw_addr_format(const gw_addr_t *a, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    int n;

    if (size == 0)
        return 0;
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        n = snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
    }
    return n < 0 ? 0 : ((size_t)n < size ? (size_t)n : size - 1);
}

uint16_t gw_addr_port(const gw_addr_t *a)
{
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

int gw_addr_equal(const gw_addr_t *a, const gw_addr_t *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}
