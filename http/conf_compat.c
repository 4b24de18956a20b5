/*
 * nginx directives the gateway accepts because it already does what they
 * ask, or because without nginx's other machinery they do nothing in nginx
 * either - so a config written for nginx loads unchanged. Each is checked as
 * nginx checks it, and where the gateway's behaviour differs from nginx's
 * the load logs why (at notice or warn), so nothing is ignored silently.
 *
 *   use METHOD                 the event method: always io_uring here
 *   proxy_buffering on|off     responses are always streamed (nginx's "off"),
 *                              with a 256 KiB queue per connection
 *   proxy_buffer_size SIZE, proxy_buffers N SIZE, proxy_busy_buffers_size SIZE
 *                              sizes of nginx's response buffers: unused
 *   proxy_cache_bypass, proxy_no_cache
 *                              only act with proxy_cache, which is not
 *                              supported (proxy_cache is an error)
 */
#include <stdio.h>
#include <string.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/module.h"
#include "vars.h"

#define HSL (GW_CONF_HTTP | GW_CONF_SERVER | GW_CONF_LOCATION)

static int set_use(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    static const char *const methods[] = {"epoll", "select", "poll", "kqueue", "eventport", "/dev/poll", NULL};

    for (int i = 0; methods[i]; i++)
        if (strcmp(n->args[1], methods[i]) == 0) {
            gw_conf_log(GW_LOG_NOTICE, n, "\"use %s\": the gateway always uses io_uring", n->args[1]);
            return 0;
        }
    return gw_conf_error(err, n, "invalid event type \"%s\"", n->args[1]);
}

static int set_buffering(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    if (strcmp(n->args[1], "on") == 0)
        gw_conf_log(GW_LOG_NOTICE, n, "\"proxy_buffering on\": responses are streamed to the client as they arrive");
    return 0;
}

static int size_arg(const gw_conf_node_t *n, const char *a, gw_conf_err_t *err)
{
    uint64_t v;

    if (gw_conf_parse_size(a, &v) < 0)
        return gw_conf_error(err, n, "invalid value \"%s\"", a);
    return 0;
}

static int set_buffer_sizes(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                            gw_conf_err_t *err)
{
    uint64_t count;

    if (n->nargs == 3) { /* proxy_buffers N SIZE */
        if (gw_conf_parse_uint(n->args[1], &count) < 0 || count == 0)
            return gw_conf_error(err, n, "invalid value \"%s\"", n->args[1]);
        if (size_arg(n, n->args[2], err) < 0)
            return -1;
    } else if (size_arg(n, n->args[1], err) < 0) {
        return -1;
    }
    gw_conf_log(GW_LOG_NOTICE, n, "\"%s\" is not used: responses are streamed, not buffered", n->args[0]);
    return 0;
}

static int set_cache_conditions(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                                gw_conf_err_t *err)
{
    char msg[256];

    for (uint32_t i = 1; i < n->nargs; i++) {
        gw_cv_t *cv = gw_cv_compile(n->args[i], msg, sizeof(msg));

        if (cv == NULL)
            return gw_conf_error(err, n, "%s", msg);
        gw_cv_free(cv);
    }
    gw_conf_log(GW_LOG_NOTICE, n, "\"%s\" has no effect without proxy_cache", n->args[0]);
    return 0;
}

static const gw_conf_cmd_t compat_cmds[] = {
    {"use", GW_CONF_EVENTS, GW_CONF_TAKE1, set_use, 0},
    {"proxy_buffering", HSL, GW_CONF_FLAG, set_buffering, 0},
    {"proxy_buffer_size", HSL, GW_CONF_TAKE1, set_buffer_sizes, 0},
    {"proxy_buffers", HSL, GW_CONF_TAKE2, set_buffer_sizes, 0},
    {"proxy_busy_buffers_size", HSL, GW_CONF_TAKE1, set_buffer_sizes, 0},
    {"proxy_cache_bypass", HSL, GW_CONF_1MORE, set_cache_conditions, 0},
    {"proxy_no_cache", HSL, GW_CONF_1MORE, set_cache_conditions, 0},
    {NULL, 0, 0, NULL, 0},
};

const gw_module_t gw_compat_module = {
    .name = "compat",
    .cmds = compat_cmds,
};
