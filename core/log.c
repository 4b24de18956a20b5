/*
 * Error log sink, and the other log files (error_log below main, access
 * logs). A reopen replaces the file behind a descriptor number with dup3(),
 * so a worker never writes to a closed descriptor: a write racing with the
 * reopen lands in either file, never nowhere. (The main sink moves to a new
 * number only when it changes path, or leaves stderr: the old fd is closed
 * after the new one is published.)
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"};

static struct {
    _Atomic int fd;
    _Atomic int level;
    char path[4096]; /* empty = stderr; touched only by the main thread */
} sink = {.fd = 2, .level = GW_LOG_NOTICE}; /* until error_log is read: nginx starts at notice too */

static _Thread_local int thread_id;

int gw_log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *gw_log_level_name(gw_log_level_t level)
{
    return level_names[level];
}

static int open_path(const char *path)
{
    int fd;

    if (strcmp(path, "stderr") == 0)
        return 2;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

static void publish(int fd)
{
    int old = atomic_exchange(&sink.fd, fd);

    if (old > 2 && old != fd)
        close(old);
}

int gw_log_open(const char *path, gw_log_level_t level)
{
    int fd = open_path(path);

    if (fd < 0)
        return fd;
    if (strcmp(path, "stderr") == 0)
        sink.path[0] = '\0';
    else
        snprintf(sink.path, sizeof(sink.path), "%s", path);
    atomic_store(&sink.level, (int)level);
    publish(fd);
    return 0;
}

int gw_log_reopen(void)
{
    int fd, old;

    if (sink.path[0] == '\0')
        return 0;
    fd = open_path(sink.path);
    if (fd < 0)
        return fd;
    old = atomic_load(&sink.fd);
    if (old > 2) {
        /* In place, as the other log files (gw_log_reopen_all): a worker
         * writing now never holds a descriptor about to be closed. */
        int r = dup3(fd, old, O_CLOEXEC) < 0 ? -errno : 0;

        close(fd);
        return r;
    }
    publish(fd);
    return 0;
}

void gw_log_set_thread_id(int id)
{
    thread_id = id;
}

int gw_log_enabled(gw_log_level_t level)
{
    return (int)level <= atomic_load_explicit(&sink.level, memory_order_relaxed);
}

static void write_line(int fd, gw_log_level_t level, const char *fmt, va_list ap);

void gw_logv(gw_log_level_t level, const char *fmt, va_list ap)
{
    if (!gw_log_enabled(level))
        return;
    write_line(atomic_load(&sink.fd), level, fmt, ap);
}

static void write_line(int fd, gw_log_level_t level, const char *fmt, va_list ap)
{
    char line[2048];
    struct tm tm;
    time_t now;
    size_t n;
    int r;

    now = time(NULL);
    localtime_r(&now, &tm);
    n = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S ", &tm);
    r = snprintf(line + n, sizeof(line) - n, "[%s] %d#%d: ", level_names[level], (int)getpid(), thread_id);
    if (r > 0)
        n += (size_t)r;
    if (n < sizeof(line)) {
        r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        if (r > 0)
            n += (size_t)r;
    }
    if (n > sizeof(line) - 1)
        n = sizeof(line) - 1;
    line[n++] = '\n';
    /* One write per line: O_APPEND keeps concurrent workers' lines whole. */
    if (write(fd, line, n) < 0) {
        /* nowhere left to report it */
    }
}

void gw_log(gw_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw_logv(level, fmt, ap);
    va_end(ap);
}

/* ---- more files (see log.h) ---- */

typedef struct log_file {
    char *path;
    int fd;
} log_file_t;

/* Touched by the main thread only (configuration loads, SIGUSR1). */
static log_file_t *files;
static uint32_t nfiles;

int gw_log_file_open(const char *path)
{
    log_file_t *grown;
    int fd;

    if (strcmp(path, "stderr") == 0)
        return 2;
    for (uint32_t i = 0; i < nfiles; i++)
        if (strcmp(files[i].path, path) == 0)
            return files[i].fd;
    grown = realloc(files, (nfiles + 1) * sizeof(*files));
    if (grown == NULL)
        return -ENOMEM;
    files = grown;
    fd = open_path(path);
    if (fd < 0)
        return fd;
    files[nfiles].path = strdup(path);
    if (files[nfiles].path == NULL) {
        close(fd);
        return -ENOMEM;
    }
    files[nfiles++].fd = fd;
    return fd;
}

/* Sinks, shared by (file, level) so reloads do not pile up new ones. Main thread only. */
static gw_log_sink_t **sinks;
static uint32_t nsinks;

int gw_log_sink_open(const char *path, int level, gw_log_sink_t **out)
{
    gw_log_sink_t *s, **grown;
    int fd = gw_log_file_open(path);

    if (fd < 0)
        return fd;
    for (uint32_t i = 0; i < nsinks; i++)
        if (sinks[i]->fd == fd && sinks[i]->level == level) {
            *out = sinks[i];
            return 0;
        }
    grown = realloc(sinks, (nsinks + 1) * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    sinks = grown;
    s = malloc(sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->fd = fd;
    s->level = level;
    sinks[nsinks++] = s;
    *out = s; /* kept for the process' life, as the file is */
    return 0;
}

int gw_log_reopen_all(void)
{
    int rc = gw_log_reopen();

    for (uint32_t i = 0; i < nfiles; i++) {
        int fd = open_path(files[i].path);

        if (fd < 0) {
            rc = rc ? rc : fd;
            continue;
        }
        /* Atomically replaces what the number refers to: no window where a
         * worker's write could hit a closed or reused descriptor. */
        if (dup3(fd, files[i].fd, O_CLOEXEC) < 0 && rc == 0)
            rc = -errno;
        close(fd);
    }
    return rc;
}

void gw_log_to(const gw_log_sink_t *s, gw_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (s == NULL)
        gw_logv(level, fmt, ap);
    else if ((int)level <= s->level)
        write_line(s->fd, level, fmt, ap);
    va_end(ap);
}
