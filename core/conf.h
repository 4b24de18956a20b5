/*
 * The configuration reader: nginx syntax into a tree, directive tables applied
 * to the tree, and the value parsers (sizes, times, flags) every module uses.
 *
 * Every function that can fail returns 0 or -1 and fills a gw_conf_err_t whose
 * message ends in "in FILE:LINE" (nginx's wording), so the caller only prints it.
 */
#ifndef GW_CONF_H
#define GW_CONF_H

#include "conf-t.h"

/*
 * Read `path` (and every file it includes) into `cf`. `extra` is the text of
 * `-g` (main-context directives, may be NULL); its directives come first and
 * errors in it say "in command line". Relative include paths resolve against
 * the directory of `path`. On failure cf holds nothing to free.
 */
int gw_conf_load(gw_conf_t *cf, const char *path, const char *extra, gw_conf_err_t *err);

/* Same as gw_conf_load, from a string (unit tests, quick mode). `name` plays the file name. */
int gw_conf_load_string(gw_conf_t *cf, const char *name, const char *text, const char *conf_prefix,
                        gw_conf_err_t *err);

void gw_conf_free(gw_conf_t *cf);

/*
 * Walk `nodes` (n of them) found in context `ctx`: look each name up in
 * `tables` (NULL-terminated array of NULL-name-terminated command tables),
 * check the context and the argument shape, and call the command's setter
 * with `conf` and `user`. Errors, in nginx's words:
 *   unknown directive "x" in f:l
 *   "x" directive is not allowed here in f:l
 *   invalid number of arguments in "x" directive in f:l
 *   directive "x" has no opening "{" in f:l          (BLOCK command written with ;)
 *   unexpected "{" in f:l                             (non-block command written with {)
 *   invalid value "v" in "x" directive, it must be "on" or "off" in f:l   (FLAG)
 */
int gw_conf_apply(const gw_conf_node_t *nodes, uint32_t n, uint32_t ctx, const gw_conf_cmd_table_t *tables,
                  void *conf, void *user, gw_conf_err_t *err);

/* Fill err with printf-style text followed by " in FILE:LINE" of node n. Returns -1. */
int gw_conf_error(gw_conf_err_t *err, const gw_conf_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Log (at `level`, a gw_log_level_t) printf-style text followed by " in FILE:LINE" of node n:
 * for what is accepted but does not do all nginx would, so it is never silent. */
void gw_conf_log(int level, const gw_conf_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A keyword and the bit it stands for, for directives that take a set of keywords. */
typedef struct gw_conf_bit {
    const char *name;
    uint64_t bit;
} gw_conf_bit_t;

/* The bit of n->args[i] among names[0..count): 0, or -1 with nginx's `invalid value "x"` in err. */
int gw_conf_bit(const gw_conf_node_t *n, uint32_t i, const gw_conf_bit_t *names, size_t count, uint64_t *bit,
                gw_conf_err_t *err);

/*
 * Value parsers. Return 0 and set *out, or -1 on a malformed or overflowing value.
 *   size: "1024", "64k"/"64K", "1m"/"1M", "1g"/"1G"  (bytes)
 *   msec: nginx time: "500ms", "10s", "1m", "2h", "1d", "1w", "1M"(30d), "1y"(365d),
 *         combinations "1h30m", a bare number is seconds
 *   uint: decimal, no sign, no overflow
 */
int gw_conf_parse_size(const char *s, uint64_t *out);
int gw_conf_parse_msec(const char *s, uint64_t *out);
int gw_conf_parse_uint(const char *s, uint64_t *out);

/*
 * Generic setters for gw_conf_cmd_t.set: the value lives at conf + cmd->offset.
 * They reject a second occurrence in the same block: "x" directive is duplicate.
 *   flag: int (0/1, GW_CONF_UNSET_INT when unset)
 *   uint: uint64_t (GW_CONF_UNSET_U64 when unset)
 *   size: uint64_t bytes (GW_CONF_UNSET_U64 when unset)
 *   msec: uint64_t milliseconds (GW_CONF_UNSET_MSEC when unset)
 *   str:  char * (NULL when unset); the string is strdup'ed, the owner frees it
 */
int gw_conf_set_flag_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err);
int gw_conf_set_uint_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err);
int gw_conf_set_size_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err);
int gw_conf_set_msec_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err);
int gw_conf_set_str_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err);

/*
 * Write the configuration as nginx -T does: for every file read,
 * "# configuration file PATH:\n" followed by its contents. Returns 0 or -errno.
 */
int gw_conf_dump(const gw_conf_t *cf, int fd);

#endif
