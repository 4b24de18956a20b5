/*
 * The error log: nginx's levels and line format
 *   2026/11/22 05:30:58 [error] 1234#1: message
 * One process-wide sink (a file or stderr) that the main thread opens and
 * reopens (SIGUSR1); workers write whole lines with one write(2), which
 * O_APPEND makes atomic, so no lock is needed. Logging is for events
 * (startup, failures), never for every request.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdarg.h>

typedef enum gw_log_level {
    GW_LOG_EMERG = 0,
    GW_LOG_ALERT,
    GW_LOG_CRIT,
    GW_LOG_ERR,
    GW_LOG_WARN,
    GW_LOG_NOTICE,
    GW_LOG_INFO,
    GW_LOG_DEBUG,
} gw_log_level_t;

/* Parse "error", "warn", ... Returns the level or -1. */
int gw_log_level_parse(const char *name);
const char *gw_log_level_name(gw_log_level_t level);

/*
 * Point the log at `path` ("stderr" for standard error) with a minimum level.
 * Returns 0 or -errno (the previous sink stays in use on failure).
 */
int gw_log_open(const char *path, gw_log_level_t level);

/* Reopen the current file (after logrotate renamed it). Returns 0 or -errno. */
int gw_log_reopen(void);

/* Set the worker number shown after the pid ("1234#2"); call from each worker thread. */
void gw_log_set_thread_id(int id);

int gw_log_enabled(gw_log_level_t level);

void gw_log(gw_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gw_logv(gw_log_level_t level, const char *fmt, va_list ap);

/*
 * Log files besides the main error log: error_log below main, access logs.
 * Opened by the main thread while loading a configuration, shared by path
 * (two directives naming one file get one descriptor), kept for the
 * process' life, and reopened in place on SIGUSR1: the new file is dup3()'d
 * onto the same descriptor number, so a worker never sees a stale or closed
 * descriptor and needs to do nothing (a write already in flight finishes in
 * the old file).
 */
typedef struct gw_log_sink {
    int fd;
    int level; /* messages up to this level */
} gw_log_sink_t;

/* The shared descriptor for `path` ("stderr" is fd 2), opened O_APPEND if new. fd or -errno. */
int gw_log_file_open(const char *path);

/* A sink writing `level` and more severe to `path`. 0 or -errno. Sinks live as long as the process. */
int gw_log_sink_open(const char *path, int level, gw_log_sink_t **out);

/* Reopen every file of gw_log_file_open (and the main error log). 0, or the first -errno (others still done). */
int gw_log_reopen_all(void);

/* Like gw_log, to `sink` (NULL: the main error log). */
void gw_log_to(const gw_log_sink_t *sink, gw_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define gw_log_error(...) gw_log(GW_LOG_ERR, __VA_ARGS__)
#define gw_log_warn(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define gw_log_notice(...) gw_log(GW_LOG_NOTICE, __VA_ARGS__)
#define gw_log_info(...) gw_log(GW_LOG_INFO, __VA_ARGS__)

#endif
