#include "cycle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "gw.h"

#include "conf.h"
#include "log.h"
#include "module.h"
#include "worker.h"

static int set_worker_processes(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                                gw_conf_err_t *err)
{
    gw_cycle_t *cy = conf;
    uint64_t v;

    if (cy->workers != GW_CONF_UNSET_INT)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    if (strcmp(n->args[1], "auto") == 0) {
        cy->workers = 0;
        return 0;
    }
    if (gw_conf_parse_uint(n->args[1], &v) < 0 || v == 0 || v > 1024)
        return gw_conf_error(err, n, "invalid value \"%s\" in \"%s\" directive", n->args[1], n->args[0]);
    cy->workers = (int)v;
    return 0;
}

static int set_error_log(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    gw_cycle_t *cy = conf;
    int level = GW_LOG_ERR;

    if (n->nargs == 3 && (level = gw_log_level_parse(n->args[2])) < 0)
        return gw_conf_error(err, n, "invalid log level \"%s\"", n->args[2]);
    free(cy->error_log);
    cy->error_log = strcmp(n->args[1], "stderr") == 0 ? strdup("stderr") : gw_cycle_path(cy, n->args[1]);
    cy->log_level = level;
    return cy->error_log ? 0 : gw_conf_error(err, n, "out of memory");
}

static int set_pid(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    gw_cycle_t *cy = conf;

    if (cy->pid_path)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    cy->pid_path = gw_cycle_path(cy, n->args[1]);
    return 0;
}

static int set_events(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err);

static int set_multi_accept(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                            gw_conf_err_t *err)
{
    /* A multishot accept always takes every pending connection, which is what
     * "multi_accept on" asks of nginx; both values are accepted unchanged. */
    return 0;
}

const gw_conf_cmd_t gw_core_cmds[] = {
    {"worker_processes", GW_CONF_MAIN, GW_CONF_TAKE1, set_worker_processes, 0},
    {"pid", GW_CONF_MAIN, GW_CONF_TAKE1, set_pid, 0},
    {"error_log", GW_CONF_MAIN, GW_CONF_TAKE12, set_error_log, 0},
    {"daemon", GW_CONF_MAIN, GW_CONF_FLAG, gw_conf_set_flag_slot, offsetof(gw_cycle_t, daemon)},
    {"events", GW_CONF_MAIN, GW_CONF_BLOCK | GW_CONF_NOARGS, set_events, 0},
    {"worker_connections", GW_CONF_EVENTS, GW_CONF_TAKE1, gw_conf_set_uint_slot,
     offsetof(gw_cycle_t, worker_connections)},
    {"multi_accept", GW_CONF_EVENTS, GW_CONF_FLAG, set_multi_accept, 0},
    {NULL, 0, 0, NULL, 0},
};

/* Every module's table, for gw_conf_apply (which must know all names to say "not allowed here"). */
static gw_conf_cmd_table_t all_tables[16];

const gw_conf_cmd_table_t *gw_cycle_tables(void)
{
    if (all_tables[0] == NULL) {
        size_t i = 0;

        all_tables[i++] = gw_core_cmds;
        for (const gw_module_t *const *m = gw_modules; *m && i < GW_ARRAY_SIZE(all_tables) - 1; m++)
            if ((*m)->cmds)
                all_tables[i++] = (*m)->cmds;
    }
    return all_tables;
}

static int set_events(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    return gw_conf_apply(n->children, n->nchildren, GW_CONF_EVENTS, gw_cycle_tables(), conf, user, err);
}

char *gw_cycle_path(const gw_cycle_t *cy, const char *path)
{
    char *out;

    if (path[0] == '/')
        return strdup(path);
    if (asprintf(&out, "%s%s", cy->prefix, path) < 0)
        return NULL;
    return out;
}

int gw_cycle_load(gw_cycle_t *cy, const char *prefix, const char *conf_file, const char *text, const char *extra,
                  gw_conf_err_t *err)
{
    int ret;

    memset(cy, 0, sizeof(*cy));
    cy->prefix = strdup(prefix);
    cy->conf_file = strdup(conf_file);
    cy->daemon = GW_CONF_UNSET_INT;
    cy->workers = GW_CONF_UNSET_INT;
    cy->worker_connections = GW_CONF_UNSET_U64;
    cy->log_level = GW_LOG_ERR;
    if (cy->prefix == NULL || cy->conf_file == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }
    if (text)
        ret = gw_conf_load_string(&cy->conf, conf_file, text, cy->prefix, err);
    else
        ret = gw_conf_load(&cy->conf, conf_file, extra, err);
    if (ret < 0)
        return -1;
    if (gw_conf_apply(cy->conf.root.children, cy->conf.root.nchildren, GW_CONF_MAIN, gw_cycle_tables(), cy, cy, err) < 0)
        return -1;

    /* nginx's defaults */
    if (cy->daemon == GW_CONF_UNSET_INT)
        cy->daemon = 1;
    if (cy->workers == GW_CONF_UNSET_INT)
        cy->workers = 1;
    if (cy->workers == 0)
        cy->workers = gw_cpu_count();
    if (cy->worker_connections == GW_CONF_UNSET_U64)
        cy->worker_connections = 1024;
    if (cy->worker_connections < 2 || cy->worker_connections > (1u << 24)) {
        snprintf(err->msg, sizeof(err->msg), "\"worker_connections\" must be between 2 and %u", 1u << 24);
        return -1;
    }
    if (cy->error_log == NULL)
        cy->error_log = gw_cycle_path(cy, "logs/error.log");

    for (const gw_module_t *const *m = gw_modules; *m; m++)
        if ((*m)->init_cycle && (*m)->init_cycle(cy, err) < 0)
            return -1;
    return 0;
}

void gw_cycle_free(gw_cycle_t *cy)
{
    size_t n = 0;

    /* In reverse: a module may hold things in an earlier module's structures. */
    while (gw_modules[n])
        n++;
    while (n-- > 0)
        if (gw_modules[n]->free_cycle)
            gw_modules[n]->free_cycle(cy);
    for (uint32_t i = 0; i < cy->nlistens; i++)
        free(cy->listens[i].fds);
    free(cy->listens);
    gw_conf_free(&cy->conf);
    free(cy->prefix);
    free(cy->conf_file);
    free(cy->pid_path);
    free(cy->error_log);
    memset(cy, 0, sizeof(*cy));
}

gw_listen_t *gw_cycle_listen(gw_cycle_t *cy, const gw_addr_t *addr, int backlog, const char *file, uint32_t line)
{
    gw_listen_t *l;

    for (uint32_t i = 0; i < cy->nlistens; i++)
        if (gw_addr_equal(&cy->listens[i].addr, addr))
            return &cy->listens[i];
    l = realloc(cy->listens, (cy->nlistens + 1) * sizeof(*l));
    if (l == NULL)
        return NULL;
    cy->listens = l;
    l = &cy->listens[cy->nlistens++];
    memset(l, 0, sizeof(*l));
    l->addr = *addr;
    l->backlog = backlog;
    l->file = file;
    l->line = line;
    gw_addr_format(addr, l->text, sizeof(l->text));
    return l;
}

static int start_listening(const gw_listen_t *l, int fd, char *msg, size_t size)
{
    if (listen(fd, l->backlog) < 0) {
        snprintf(msg, size, "listen() to %s failed (%d: %s)", l->text, errno, strerror(errno));
        return -1;
    }
    return 0;
}

/* A bound socket; listening too when `listening` (see gw_cycle_bind for when not). */
static int open_listener(const gw_listen_t *l, int listening, char *msg, size_t size)
{
    int one = 1;
    int fd = socket(l->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(msg, size, "socket() %s failed (%d: %s)", l->text, errno, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* One socket per worker: the kernel spreads new connections across them,
     * and no worker ever touches another's accept queue. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (l->addr.ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* Accepted sockets inherit it: responses leave whole, Nagle only delays. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&l->addr.ss, l->addr.len) < 0) {
        snprintf(msg, size, "bind() to %s failed (%d: %s)", l->text, errno, strerror(errno));
        close(fd);
        return -1;
    }
    if (listening && start_listening(l, fd, msg, size) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static gw_listen_t *same_address(gw_cycle_t *cy, const gw_addr_t *a)
{
    for (uint32_t i = 0; i < cy->nlistens; i++)
        if (cy->listens[i].fds && gw_addr_equal(&cy->listens[i].addr, a))
            return &cy->listens[i];
    return NULL;
}

static void close_fds(gw_listen_t *l, int workers)
{
    for (int k = 0; l->fds && k < workers; k++)
        if (l->fds[k] >= 0)
            close(l->fds[k]);
    free(l->fds);
    l->fds = NULL;
}

int gw_cycle_bind_reload(gw_cycle_t *next, gw_cycle_t *cur, int workers, char *msg, size_t size)
{
    /* New addresses first: if one fails, nothing was taken from cur yet. */
    for (uint32_t i = 0; i < next->nlistens; i++) {
        gw_listen_t *l = &next->listens[i];

        if (same_address(cur, &l->addr))
            continue;
        l->fds = malloc((size_t)workers * sizeof(int));
        if (l->fds == NULL) {
            snprintf(msg, size, "out of memory");
            goto fail;
        }
        for (int k = 0; k < workers; k++)
            l->fds[k] = -1;
        for (int k = 0; k < workers; k++)
            if ((l->fds[k] = open_listener(l, 1, msg, size)) < 0)
                goto fail;
    }
    for (uint32_t i = 0; i < next->nlistens; i++) {
        gw_listen_t *l = &next->listens[i], *old;

        if (l->fds)
            continue;
        old = same_address(cur, &l->addr);
        l->fds = old->fds;
        old->fds = NULL;
        /* A changed backlog= applies to a listening socket by listening again. */
        for (int k = 0; k < workers; k++)
            listen(l->fds[k], l->backlog);
    }
    return 0;
fail:
    for (uint32_t i = 0; i < next->nlistens; i++)
        close_fds(&next->listens[i], workers);
    return -1;
}

int gw_cycle_bind(gw_cycle_t *cy, int workers, char *msg, size_t size)
{
    for (uint32_t i = 0; i < cy->nlistens; i++) {
        gw_listen_t *l = &cy->listens[i];

        l->fds = malloc((size_t)workers * sizeof(int));
        if (l->fds == NULL) {
            snprintf(msg, size, "out of memory");
            return -1;
        }
        for (int k = 0; k < workers; k++)
            l->fds[k] = -1;
        for (int k = 0; k < workers; k++)
            if ((l->fds[k] = open_listener(l, 0, msg, size)) < 0)
                return -1;
    }
    return 0;
}

int gw_cycle_start_listening(gw_cycle_t *cy, int workers, char *msg, size_t size)
{
    for (uint32_t i = 0; i < cy->nlistens; i++)
        for (int k = 0; k < workers; k++)
            if (start_listening(&cy->listens[i], cy->listens[i].fds[k], msg, size) < 0)
                return -1;
    return 0;
}
