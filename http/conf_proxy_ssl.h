/* proxy_ssl_* directives: TLS to upstreams (conf_proxy_ssl.c). */
#ifndef GW_HTTP_CONF_PROXY_SSL_H
#define GW_HTTP_CONF_PROXY_SSL_H

#include "core/module.h"

extern const gw_module_t gw_http_proxy_ssl_module;

#endif
