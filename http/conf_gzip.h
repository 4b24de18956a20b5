/*
 * The gzip module's directives (conf_gzip.c) and the lists they build, read
 * by gzip.c when a response head is complete.
 */
#ifndef GW_CONF_GZIP_H
#define GW_CONF_GZIP_H

#include <stdint.h>

#include "core/module.h"
#include "regex.h"

/* gzip_proxied: nginx's bits, tested in nginx's order (gzip.c). */
enum {
    GW_GZIP_PROXIED_OFF = 1u << 0,
    GW_GZIP_PROXIED_EXPIRED = 1u << 1,
    GW_GZIP_PROXIED_NO_CACHE = 1u << 2,
    GW_GZIP_PROXIED_NO_STORE = 1u << 3,
    GW_GZIP_PROXIED_PRIVATE = 1u << 4,
    GW_GZIP_PROXIED_NO_LM = 1u << 5,
    GW_GZIP_PROXIED_NO_ETAG = 1u << 6,
    GW_GZIP_PROXIED_AUTH = 1u << 7,
    GW_GZIP_PROXIED_ANY = 1u << 8,
};

/* gzip_types of one level: lower-cased MIME types; `any` for "*". */
typedef struct gw_gzip_types {
    char **types;
    uint32_t n;
    uint8_t any;
} gw_gzip_types_t;

/* gzip_disable of one level: User-Agent regexes (caseless, as nginx), and "msie6". */
typedef struct gw_gzip_disable {
    gw_regex_t **re;
    uint32_t n;
    uint8_t msie6;
} gw_gzip_disable_t;

extern const gw_module_t gw_gzip_module;

#endif
