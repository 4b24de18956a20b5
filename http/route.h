/*
 * Routing as nginx does it: the server by Host among those of the listening
 * address, the location by the normalized URI, the URI sent upstream, and
 * nginx's automatic 301 for a location written with a trailing slash.
 */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "http-t.h"
#include "regex.h"

/* What gw_route_location found (nginx's find_config results). */
enum {
    GW_ROUTE_NONE = 0,     /* no location matches: *loc is NULL */
    GW_ROUTE_FOUND = 1,    /* *loc is the location */
    GW_ROUTE_REDIRECT = 2, /* the URI is a static location's name minus its trailing '/': answer 301 */
    GW_ROUTE_ERROR = -1,   /* a regex failed to run */
};

/*
 * Validate and canonicalize a Host (nginx's validate_host): lower-cased, the
 * port and one trailing dot dropped. Writes at most `size` bytes to out.
 * Returns the length (0 for an empty host), or -1 for an invalid one (400):
 * "..", a '/', a NUL or control byte, nothing before the port.
 */
int gw_route_host(const char *host, uint32_t len, char *out, uint32_t size);

/* The server for a canonical host (gw_route_host) among the address's: exact
 * name, longest *.x, longest x.*, first ~regex; else the default server. */
const gw_http_srv_t *gw_route_server(const gw_http_addr_t *a, const char *host, uint32_t len);

/*
 * nginx's URI normalization: %XX decoded, "//" merged, "." and ".." resolved.
 * out needs `len` bytes. Returns the new length, or -1 when the path is
 * malformed (bad escape, %00) or climbs above the root (400).
 */
int gw_route_normalize(const char *path, uint32_t len, char *out);

/* 1 when the path needs gw_route_normalize (has '%', "//", "/." ), else 0. */
int gw_route_needs_normalize(const char *path, uint32_t len);

/*
 * The location for a normalized URI (nginx's precedence: = exact; the
 * longest prefix, which ends the search if ^~; else the first regex in
 * config order; else that longest prefix; nested locations searched the
 * same way inside the one found). caps (may be NULL) gets the regex captures.
 */
int gw_route_location(const gw_http_srv_t *s, const char *uri, uint32_t len, const gw_http_loc_t **loc,
                      gw_regex_caps_t *caps);

/* location @name of server s ("@name" with the '@'), or NULL. For error_page and friends. */
const gw_http_loc_t *gw_route_named(const gw_http_srv_t *s, const char *name);

/*
 * The request target sent upstream. Without a URI part in proxy_pass: the
 * client's path and query as received (`raw`). With one: the URI part, then
 * the normalized URI past the location's name (escaped again if the client
 * escaped anything), then the query. gw_route_upstream_uri_size is an upper
 * bound for the bytes gw_route_put_upstream_uri writes at p; it returns the end.
 */
typedef struct gw_route_uri {
    const char *raw; /* path as received */
    uint32_t raw_len;
    const char *uri; /* normalized path */
    uint32_t uri_len;
    const char *query; /* "?..." or empty */
    uint32_t query_len;
    int quoted; /* the client's path had %XX */
} gw_route_uri_t;

size_t gw_route_upstream_uri_size(const gw_http_loc_t *loc, const gw_route_uri_t *u);
char *gw_route_put_upstream_uri(const gw_http_loc_t *loc, const gw_route_uri_t *u, char *p);

/* Build what lookups need once the configuration is read (conf_route.c calls them). */
int gw_route_build_level(gw_route_level_t *lv, gw_http_loc_t **locs, uint32_t n, const gw_http_loc_t *parent,
                         char *msg, size_t size, const gw_http_loc_t **bad);
int gw_route_build_names(gw_http_addr_t *a, char *msg, size_t size);
void gw_route_free_names(gw_http_addr_t *a);

#endif
