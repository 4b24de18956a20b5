/*
 * Socket addresses as nginx writes them: "80", "127.0.0.1:8080", "*:80",
 * "[::]:80", "[::1]:8080", "localhost:3000".
 */
#ifndef GW_ADDR_H
#define GW_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct gw_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} gw_addr_t;

/*
 * Resolve `text` into at most `max` addresses. A missing port takes
 * `default_port`; a bare number is a port on the wildcard address when
 * `bare_port_is_wildcard` (listen "80"), otherwise a host name. Names are
 * resolved with getaddrinfo (blocking: only at configuration time).
 * Returns the number of addresses (>= 1), or -1 with `why` set to a short reason
 * ("invalid port", "host not found").
 */
int gw_addr_resolve(const char *text, uint16_t default_port, int bare_port_is_wildcard, gw_addr_t *out, int max,
                    const char **why);

/* Write "1.2.3.4:80" or "[::1]:80" into buf (NUL-terminated). Returns the length. */
size_t gw_addr_format(const gw_addr_t *a, char *buf, size_t size);

/* Port in host order. */
uint16_t gw_addr_port(const gw_addr_t *a);

int gw_addr_equal(const gw_addr_t *a, const gw_addr_t *b);

#endif
