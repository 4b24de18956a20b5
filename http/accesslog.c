/* Access logs: placeholder until the log writer lands. */
#include "accesslog.h"

#include "core/conf.h"

int gw_accesslog_set_format(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                            gw_conf_err_t *err)
{
    return gw_conf_error(err, n, "\"log_format\" is not supported yet");
}

int gw_accesslog_set(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    return gw_conf_error(err, n, "\"access_log\" is not supported yet");
}

int gw_accesslog_init_cycle(gw_cycle_t *cy, gw_conf_err_t *err)
{
    return 0;
}

void gw_accesslog_free_cycle(gw_cycle_t *cy)
{
}

void gw_accesslog_request(gw_worker_t *w, gw_http_req_t *req, unsigned status)
{
}
