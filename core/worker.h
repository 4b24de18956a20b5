/*
 * Workers: one thread per core, each pinned, each with its own ring, listening
 * sockets, connection table, buffers and timers. Nothing on the request path
 * is shared between workers; the main thread talks to them only through
 * `cmd` + an eventfd.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include "worker-t.h"

/*
 * Allocate and start `n` workers for cycle cy (listening sockets must already
 * be bound: cy->listens[i].fds[k] belongs to worker k). Each worker writes one
 * byte to notify_fd when its setup is done ('O' ok, 'F' failed) and 'X' when
 * its loop ends. Returns the array, or NULL with *err = -errno.
 */
gw_worker_t *gw_workers_start(const gw_cycle_t *cy, int n, int notify_fd, int *err);

/*
 * Read the environment the workers use at setup (GW_RING_BUFFERS, see
 * ring.h) once, before gw_workers_start, so a bad value stops the start with
 * a message. 0, or -EINVAL with msg filled.
 */
int gw_workers_check_env(char *msg, size_t size);

/* Ask every worker to stop (GW_CMD_STOP_GRACEFUL or _FAST); returns at once. */
void gw_workers_signal(gw_worker_t *ws, int n, int cmd);

/*
 * Switch every worker's new connections to `next` (its listening sockets
 * bound, next->users set to n). Each worker answers 'A' on the notify pipe
 * once switched, and 'R' when a configuration's last user let it go.
 */
void gw_workers_reload(gw_worker_t *ws, int n, gw_cycle_t *next);

/* Wait for every worker to end and free them. Returns 0 if all ended cleanly. */
int gw_workers_join(gw_worker_t *ws, int n);

/*
 * An exchange (a request and its response) that began at start_us (w->now_us
 * then) has ended. The loop keeps a moving average and lets completions pile
 * up for an eighth of it before waking: under load one wake serves many
 * exchanges, and no exchange waits more than ~12% longer for it.
 */
static inline void gw_worker_exchange_done(gw_worker_t *w, uint64_t start_us)
{
    uint64_t d = w->now_us - start_us;

    if (d > 1000000)
        d = 1000000;
    /* EWMA with weight 1/16 */
    w->exchange_us = (uint32_t)((w->exchange_us * 15u + d) / 16u);
}

/*
 * Every running worker (n of them), so a scrape in one worker can sum the
 * others' counters (w->st, read with relaxed loads only). Valid while the
 * workers run; NULL with *n = 0 before and after.
 */
gw_worker_t *gw_workers_all(int *n);

/* Count of CPUs this process may run on (worker_processes auto). */
int gw_cpu_count(void);

#endif
