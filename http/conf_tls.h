/* TLS termination's directives and its glue to the HTTP configuration (conf_tls.c). */
#ifndef GW_HTTP_CONF_TLS_H
#define GW_HTTP_CONF_TLS_H

#include "core/module.h"

extern const gw_module_t gw_http_tls_module;

#endif
