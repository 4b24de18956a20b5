/*
 * Loading a configuration into a cycle: read the files, apply the main and
 * events directives and every module's, let modules resolve what they need
 * (init_cycle), and bind the listening sockets.
 */
#ifndef GW_CYCLE_H
#define GW_CYCLE_H

#include <stddef.h>

#include "cycle-t.h"

/*
 * Load `conf_file` (or, when `text` is non-NULL, that text under the name
 * conf_file) with the -g directives `extra`. `prefix` ends with '/'. Nothing
 * is bound. Returns 0, or -1 with err filled ("... in file:line").
 */
int gw_cycle_load(gw_cycle_t *cy, const char *prefix, const char *conf_file, const char *text, const char *extra,
                  gw_conf_err_t *err);
void gw_cycle_free(gw_cycle_t *cy);

/* Resolve a path from the configuration against the prefix (nginx: pid, logs). Caller frees. */
char *gw_cycle_path(const gw_cycle_t *cy, const char *path);

/*
 * Register a listening address (modules, from init_cycle). Listening twice on
 * the same address returns the existing entry. NULL on allocation failure.
 */
gw_listen_t *gw_cycle_listen(gw_cycle_t *cy, const gw_addr_t *addr, int backlog, const char *file, uint32_t line);

/*
 * Create and bind one SO_REUSEPORT socket per worker for every listen. 0, or -1 with msg.
 * They do not listen yet: gw_cycle_start_listening, once the pid file is written and
 * signals are handled, so that a port accepting means `-s ...` works.
 */
int gw_cycle_bind(gw_cycle_t *cy, int workers, char *msg, size_t size);
int gw_cycle_start_listening(gw_cycle_t *cy, int workers, char *msg, size_t size);

/*
 * Sockets for a configuration replacing `cur`: addresses both listen on take
 * over cur's sockets (cur loses them), new addresses get new ones. All or
 * nothing: on failure cur keeps everything. 0, or -1 with msg.
 */
int gw_cycle_bind_reload(gw_cycle_t *next, gw_cycle_t *cur, int workers, char *msg, size_t size);

/* Every module's directive table, for gw_conf_apply on a nested block. */
const gw_conf_cmd_table_t *gw_cycle_tables(void);

/* The main- and events-context directives. */
extern const gw_conf_cmd_t gw_core_cmds[];

#endif
