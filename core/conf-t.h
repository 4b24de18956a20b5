/*
 * Types of the configuration reader: the parsed tree of directives and the
 * directive tables modules declare. No prototypes here (see conf.h).
 */
#ifndef GW_CONF_T_H
#define GW_CONF_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One directive as written: `name arg1 arg2 ...;` or `name args... { children }`.
 * args[0] is the directive name itself, so nargs >= 1. An `include` never
 * appears in the tree: the included files' directives are spliced in its place,
 * each keeping the file and line it came from.
 */
typedef struct gw_conf_node gw_conf_node_t;
struct gw_conf_node {
    char **args;              /* args[0] = name; NUL-terminated, escapes resolved */
    uint32_t nargs;           /* including the name */
    bool is_block;            /* written with { } (even if empty) */
    gw_conf_node_t *children; /* array of nchildren nodes, when is_block */
    uint32_t nchildren;
    const char *file; /* path as opened (after prefix resolution), or "command line" */
    uint32_t line;    /* 1-based line of the directive's name */
};

/* A loaded configuration: the root is the implicit main block. */
typedef struct gw_conf {
    gw_conf_node_t root; /* is_block, children = main-context directives */
    char **files;        /* every file read, in order (for -T) */
    uint32_t nfiles;
    char *conf_prefix; /* directory of the main file, with trailing '/'; includes resolve here */
    void *_arena;      /* private: owns every string and node */
} gw_conf_t;

/* A configuration error: "message in file:line" (nginx's wording), ready to print. */
typedef struct gw_conf_err {
    char msg[1024];
} gw_conf_err_t;

/* Contexts a directive may appear in (bit mask). */
enum {
    GW_CONF_MAIN = 1u << 0,
    GW_CONF_EVENTS = 1u << 1,
    GW_CONF_HTTP = 1u << 2,
    GW_CONF_SERVER = 1u << 3,
    GW_CONF_LOCATION = 1u << 4,
    GW_CONF_UPSTREAM = 1u << 5,
};

/* Argument shapes (bit mask, several TAKEn may be or-ed: TAKE1|TAKE2 = one or two). */
enum {
    GW_CONF_NOARGS = 1u << 0,
    GW_CONF_TAKE1 = 1u << 1,
    GW_CONF_TAKE2 = 1u << 2,
    GW_CONF_TAKE3 = 1u << 3,
    GW_CONF_TAKE4 = 1u << 4,
    GW_CONF_TAKE5 = 1u << 5,
    GW_CONF_TAKE6 = 1u << 6,
    GW_CONF_TAKE7 = 1u << 7,
    GW_CONF_1MORE = 1u << 8,
    GW_CONF_2MORE = 1u << 9,
    GW_CONF_FLAG = 1u << 10,  /* exactly one argument, "on" or "off" */
    GW_CONF_BLOCK = 1u << 11, /* must be written with { } ; without it: no braces allowed */
};
#define GW_CONF_TAKE12 (GW_CONF_TAKE1 | GW_CONF_TAKE2)
#define GW_CONF_TAKE123 (GW_CONF_TAKE1 | GW_CONF_TAKE2 | GW_CONF_TAKE3)

typedef struct gw_conf_cmd gw_conf_cmd_t;

/*
 * Called for a directive found in a context its command allows, with the
 * argument count already checked. `conf` is the struct of the enclosing
 * context (what the caller of gw_conf_apply passed). Returns 0, or -1 with
 * err filled (use gw_conf_error so the message names file:line).
 */
typedef int (*gw_conf_set_cb)(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *ctx,
                              gw_conf_err_t *err);

struct gw_conf_cmd {
    const char *name;
    uint32_t contexts; /* GW_CONF_MAIN | ... */
    uint32_t args;     /* GW_CONF_TAKE1 | ... */
    gw_conf_set_cb set;
    size_t offset; /* for the generic slot setters: where in `conf` the value lives */
};

/* A NULL-name-terminated table of commands; modules export one each. */
typedef const gw_conf_cmd_t *gw_conf_cmd_table_t;

/* "Not set" markers the slot setters test for duplicates and merges use. */
#define GW_CONF_UNSET_INT (-1)
#define GW_CONF_UNSET_U64 UINT64_MAX
#define GW_CONF_UNSET_MSEC UINT64_MAX

#endif
