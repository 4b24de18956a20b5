/*
 * The list of modules the core loads (core/module.h), and what -V reports.
 * It lives here because http/ is the layer that ties the others together.
 */
#include <llhttp.h>
#include <stdio.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "balancer/balancer.h"
#include "gw_config.h"
#include "conf_answers.h"
#include "conf_gzip.h"
#include "conf_route.h"
#include "conf_proxy_ssl.h"
#include "conf_tls.h"
#include "http.h"
#include "limit_req.h"
#include "obs.h"

extern const gw_module_t gw_compat_module; /* conf_compat.c: nothing else to export */

const gw_module_t *const gw_modules[] = {
    &gw_balancer_module,
    &gw_http_module,
    &gw_answers_module,
    &gw_http_headers_module, /* after http: its init_cycle needs the locations resolved */
    &gw_route_module,
    &gw_obs_module,
    &gw_http_tls_module,
    &gw_limit_req_module,
    &gw_http_proxy_ssl_module,
    &gw_compat_module,
    &gw_gzip_module, /* after http: its free_cycle walks the levels http frees */
    NULL,
};

void gw_print_versions(FILE *out);
void gw_print_versions(FILE *out)
{
    fprintf(out, "built with liburing %s, wolfSSL %s (running %s), llhttp %d.%d.%d, jemalloc %s\n",
            GW_LIBURING_VERSION, GW_WOLFSSL_VERSION, wolfSSL_lib_version(), LLHTTP_VERSION_MAJOR,
            LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH, GW_JEMALLOC_VERSION);
    fprintf(out, "built by gcc %s, %s build\n", __VERSION__, GW_BUILD_TYPE);
    fprintf(out, "modules:");
    for (const gw_module_t *const *m = gw_modules; *m; m++)
        fprintf(out, " %s", (*m)->name);
    fprintf(out, "\nfeatures: http/1.1 reverse proxy, upstream round_robin (weighted), upstream keepalive, "
                 "io_uring multishot accept/recv, provided buffer rings\n");
}
