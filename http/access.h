/* allow / deny (access.c). */
#ifndef GW_ACCESS_H
#define GW_ACCESS_H

#include "core/conn-t.h"
#include "http-t.h"

/*
 * Parse "all", an address ("10.0.0.1", "::1") or a CIDR ("10.0.0.0/8",
 * "2001:db8::/32") into r. 0, or -1 when it is none of these. Host bits
 * set under the mask are cleared (nginx warns about them and does the same).
 */
int gw_access_parse(const char *text, int deny, gw_access_rule_t *r);

/* Is the client at `peer` allowed by `rules` (the first that matches decides; none: allowed)? */
int gw_access_allowed(const gw_access_rule_t *rules, uint32_t n, const gw_peer_addr_t *peer);

#endif
