/*
 * The main thread once workers run: signals in, commands out.
 *   SIGTERM/SIGINT  fast stop         SIGQUIT  graceful stop
 *   SIGHUP          reload            SIGUSR1  reopen the error log
 * A reload loads and checks the new configuration while the old one keeps
 * serving; only if it is valid (and its new sockets bind) do the workers
 * switch new connections to it. Listening sockets of addresses in both are
 * handed over, not reopened: their backlog carries over, nothing is refused.
 * A configuration is freed once no worker has a connection opened under it.
 */
#include "master.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cycle.h"
#include "log.h"
#include "worker.h"

typedef struct master {
    gw_cycle_t *cy;        /* current */
    gw_cycle_t **retired;  /* replaced, freed when no worker uses them */
    uint32_t nretired;
    gw_worker_t *ws;
    int n;
    int stopping;
    int acks;              /* workers yet to switch to the last reload */
    int reload_waiting;    /* a SIGHUP came while a switch was under way */
    const gw_master_opts_t *opts;
} master_t;

static void free_retired(master_t *m)
{
    uint32_t k = 0;

    for (uint32_t i = 0; i < m->nretired; i++) {
        gw_cycle_t *cy = m->retired[i];

        if (atomic_load(&cy->users) == 0) {
            gw_log(GW_LOG_INFO, "a replaced configuration was released (no connection uses it any more)");
            gw_cycle_free(cy);
            free(cy);
        } else {
            m->retired[k++] = cy;
        }
    }
    m->nretired = k;
}

static void reload(master_t *m)
{
    gw_cycle_t *next, **grown;
    gw_conf_err_t err;
    char msg[512];

    if (m->acks) {
        m->reload_waiting = 1; /* one switch at a time: each worker sees every configuration */
        return;
    }
    gw_log(GW_LOG_NOTICE, "reconfiguring");
    next = calloc(1, sizeof(*next));
    grown = realloc(m->retired, (m->nretired + 1) * sizeof(*grown));
    if (next == NULL || grown == NULL) {
        free(next);
        gw_log(GW_LOG_EMERG, "reload: out of memory; keeping the running configuration");
        return;
    }
    m->retired = grown;
    if (gw_cycle_load(next, m->cy->prefix, m->cy->conf_file, m->opts->text, m->opts->extra, &err) < 0) {
        gw_log(GW_LOG_EMERG, "%s; keeping the running configuration", err.msg);
        gw_cycle_free(next);
        free(next);
        return;
    }
    /* The thread count and the connection tables are sized at start. */
    if (next->workers != m->n)
        gw_log(GW_LOG_NOTICE, "reload: worker_processes %d -> %d takes effect at the next restart", m->n,
               next->workers);
    if (next->worker_connections != m->cy->worker_connections)
        gw_log(GW_LOG_NOTICE, "reload: worker_connections %llu -> %llu takes effect at the next restart",
               (unsigned long long)m->cy->worker_connections, (unsigned long long)next->worker_connections);
    next->workers = m->n;
    next->worker_connections = m->cy->worker_connections;
    if (gw_cycle_bind_reload(next, m->cy, m->n, msg, sizeof(msg)) < 0) {
        gw_log(GW_LOG_EMERG, "%s; keeping the running configuration", msg);
        gw_cycle_free(next);
        free(next);
        return;
    }
    if (!m->opts->error_log_fixed &&
        (strcmp(next->error_log, m->cy->error_log) != 0 || next->log_level != m->cy->log_level) &&
        gw_log_open(next->error_log, (gw_log_level_t)next->log_level) < 0)
        gw_log(GW_LOG_ALERT, "reload: open() \"%s\" failed, logging stays where it was", next->error_log);
    if (next->pid_path == NULL)
        next->pid_path = m->cy->pid_path ? strdup(m->cy->pid_path) : NULL;
    atomic_store(&next->users, m->n);
    m->retired[m->nretired++] = m->cy;
    m->cy = next;
    m->acks = m->n;
    gw_workers_reload(m->ws, m->n, next);
}

static void on_worker_note(master_t *m, char c, int *alive)
{
    switch (c) {
    case 'X':
        (*alive)--;
        if (!m->stopping) {
            gw_log(GW_LOG_ALERT, "a worker exited unexpectedly, stopping");
            m->stopping = GW_CMD_STOP_FAST;
            gw_workers_signal(m->ws, m->n, m->stopping);
        }
        break;
    case 'A':
        if (m->acks > 0 && --m->acks == 0) {
            gw_log(GW_LOG_NOTICE, "reload: every worker serves new connections with the new configuration");
            if (m->reload_waiting && !m->stopping) {
                m->reload_waiting = 0;
                reload(m);
            }
        }
        break;
    case 'R':
        free_retired(m);
        break;
    default:
        break;
    }
}

static void on_signal(master_t *m, int signo)
{
    int r;

    switch (signo) {
    case SIGTERM:
    case SIGINT:
        gw_log(GW_LOG_NOTICE, "signal %d received, exiting", signo);
        m->stopping = GW_CMD_STOP_FAST;
        gw_workers_signal(m->ws, m->n, m->stopping);
        break;
    case SIGQUIT:
        gw_log(GW_LOG_NOTICE, "signal %d received, gracefully shutting down", signo);
        if (!m->stopping) {
            m->stopping = GW_CMD_STOP_GRACEFUL;
            gw_workers_signal(m->ws, m->n, m->stopping);
        }
        break;
    case SIGUSR1:
        gw_log(GW_LOG_NOTICE, "signal %d received, reopening logs", signo);
        if ((r = gw_log_reopen_all()) < 0)
            gw_log(GW_LOG_ALERT, "reopening logs failed (%d: %s)", -r, strerror(-r));
        break;
    case SIGHUP:
        gw_log(GW_LOG_NOTICE, "signal %d received, reconfiguring", signo);
        if (!m->stopping)
            reload(m);
        break;
    default:
        break;
    }
}

int gw_master_run(gw_cycle_t **cyp, gw_worker_t *ws, int n, int sfd, int notify_fd, const gw_master_opts_t *opts)
{
    master_t m = {.cy = *cyp, .ws = ws, .n = n, .opts = opts};
    int alive = n, rc;

    while (alive > 0) {
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = notify_fd, .events = POLLIN}};
        struct signalfd_siginfo si;
        char c;

        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if ((pfd[1].revents & POLLIN) && read(notify_fd, &c, 1) == 1)
            on_worker_note(&m, c, &alive);
        if ((pfd[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si))
            on_signal(&m, (int)si.ssi_signo);
    }
    rc = gw_workers_join(ws, n);
    /* Workers are gone: every configuration can go. */
    for (uint32_t i = 0; i < m.nretired; i++) {
        gw_cycle_free(m.retired[i]);
        free(m.retired[i]);
    }
    free(m.retired);
    *cyp = m.cy;
    return rc;
}
