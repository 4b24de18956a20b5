/*
 * The module interface: how the HTTP, balancer and TLS layers plug into the
 * core without the core knowing them (STYLE.md 1). The list itself,
 * gw_modules, is defined by the top layer (http/modules.c).
 */
#ifndef GW_MODULE_H
#define GW_MODULE_H

#include "conf-t.h"
#include "cycle-t.h"

typedef struct gw_module {
    const char *name;
    const gw_conf_cmd_t *cmds; /* directives, or NULL */
    /* After every directive was applied: check, resolve, register listens. 0 or -1 with err. */
    int (*init_cycle)(gw_cycle_t *cy, gw_conf_err_t *err);
    void (*free_cycle)(gw_cycle_t *cy);
    /* In the worker's thread, for each configuration it takes on (at start, at
     * each reload) / when it is done with one. 0 or -errno. */
    int (*init_worker)(gw_worker_t *w, struct gw_wcycle *wc);
    void (*exit_worker)(gw_worker_t *w, struct gw_wcycle *wc);
} gw_module_t;

extern const gw_module_t *const gw_modules[]; /* NULL-terminated */

#endif
