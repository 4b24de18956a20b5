/*
 * Types of a loaded configuration ("cycle", nginx's word): what the main and
 * events contexts say, the listening sockets, and the modules' own parts.
 */
#ifndef GW_CYCLE_T_H
#define GW_CYCLE_T_H

#include <stdatomic.h>
#include <stdint.h>

#include "addr.h"
#include "conf-t.h"
#include "conn-t.h"

typedef struct gw_listen gw_listen_t;
typedef struct gw_cycle gw_cycle_t;

/* A new connection was accepted on l: the owner takes c (fd set, ops unset). */
typedef void (*gw_accept_cb)(gw_worker_t *w, gw_conn_t *c, const gw_listen_t *l);

struct gw_listen {
    gw_addr_t addr;
    char text[64]; /* "127.0.0.1:8080", for logs */
    int backlog;
    gw_accept_cb on_accept;
    void *ctx;       /* the owner's per-address state */
    int *fds;        /* one SO_REUSEPORT socket per worker, -1 until bound */
    const char *file; /* where it was configured, for bind errors */
    uint32_t line;
};

struct gw_cycle {
    gw_conf_t conf;
    char *prefix;    /* -p, with a trailing '/' */
    char *conf_file; /* as given or defaulted */
    int daemon;      /* GW_CONF_UNSET_INT until set; resolved to 0/1 */
    int workers;     /* worker_processes, resolved (auto = CPUs we may run on) */
    int workers_cli; /* --workers override, 0 = none, -1 = auto */
    uint64_t worker_connections;
    char *pid_path;  /* resolved against the prefix; NULL = no pid file */
    char *error_log; /* resolved path or "stderr" */
    int log_level;
    gw_listen_t *listens;
    uint32_t nlistens;
    _Atomic int users; /* workers still using it (reload: freed by the main thread at 0) */
    void *http;     /* the HTTP module's configuration */
    void *balancer; /* the upstream registry (balancer/) */
};

#endif
