/* The main thread's loop while workers run (see master.c). */
#ifndef GW_MASTER_H
#define GW_MASTER_H

#include "cycle-t.h"
#include "worker-t.h"

typedef struct gw_master_opts {
    const char *text;    /* quick mode's configuration text, or NULL (read the file) */
    const char *extra;   /* -g directives */
    int error_log_fixed; /* -e given: reloads do not move the error log */
} gw_master_opts_t;

/*
 * Run until every worker has ended. *cyp is the running configuration; it
 * may be replaced by reloads (the caller frees the final one). Returns 0 when
 * every worker ended cleanly.
 */
int gw_master_run(gw_cycle_t **cyp, gw_worker_t *ws, int n, int sfd, int notify_fd, const gw_master_opts_t *opts);

#endif
