/*
 * nginx variables ($host, $remote_addr, $http_NAME, ...) and "complex values"
 * (text with variables in it, like "$host$request_uri"). A complex value is
 * compiled once at configuration time into literal pieces and resolved
 * variable getters; evaluating it per request is a walk over those pieces,
 * with no name lookups.
 */
#ifndef GW_VARS_H
#define GW_VARS_H

#include <stddef.h>
#include <stdint.h>

#include "request-t.h"

typedef struct gw_cv gw_cv_t;

/*
 * A variable's getter: writes the value for req into out (up to cap bytes)
 * and returns its full length (which may exceed cap), so one pass both
 * measures and fills. arg/arg_len: the name past the prefix for a prefixed
 * variable ($http_NAME gives "NAME"), else NULL.
 */
typedef size_t (*gw_var_get_fn)(const gw_http_req_t *req, const char *arg, size_t arg_len, char *out, size_t cap);

typedef struct gw_var_def {
    const char *name; /* "status"; or with prefix set, "sent_http_" */
    gw_var_get_fn get;
    int prefix;
} gw_var_def_t;

/*
 * More variables, defined by another module (the access log's $status,
 * $request_time, ... in vars_log.c) as a NULL-name-terminated array; a weak
 * reference, so vars.c links and works without it. Looked up after vars.c's
 * own, at compile time only.
 */
extern const gw_var_def_t gw_vars_more[] __attribute__((weak));

/*
 * Compile `text`. Variables: $name or ${name}, as nginx: a `$` not followed
 * by a name is an error. Returns NULL with msg filled (nginx's words:
 * "unknown \"foo\" variable", "invalid variable name", "the closing bracket
 * in \"foo\" variable is missing") or on out of memory.
 */
gw_cv_t *gw_cv_compile(const char *text, char *msg, size_t size);
void gw_cv_free(gw_cv_t *cv);

/* Does it contain any variable (or is it a constant)? */
int gw_cv_has_vars(const gw_cv_t *cv);

/*
 * Evaluate for req into out (capacity cap). Returns the full length, which
 * may exceed cap (then out holds the first cap bytes and the caller may retry
 * with a larger buffer). Unset variables are empty.
 */
size_t gw_cv_eval(const gw_cv_t *cv, const gw_http_req_t *req, char *out, size_t cap);

#endif
