/*
 * A worker's views of configurations (gw_wcycle_t, see worker-t.h): creating
 * one at start and at each reload, its listeners and accepts, and letting an
 * old one go once nothing opened under it remains.
 */
#ifndef GW_WCYCLE_H
#define GW_WCYCLE_H

#include "worker-t.h"

/*
 * Take on configuration cy: the modules' per-worker state and this worker's
 * listening sockets of cy (accepts not armed yet). NULL on failure (logged).
 */
gw_wcycle_t *gw_wcycle_new(gw_worker_t *w, const gw_cycle_t *cy);

/* Arm every listener's accepts. */
void gw_wcycle_arm(gw_worker_t *w, gw_wcycle_t *wc);

/*
 * Switch new connections to `next`: the current view stops accepting (its
 * sockets that `next` does not use are closed, the others keep their
 * backlog), its connections are asked to finish (idle ones close), and it
 * is released once drained.
 */
void gw_wcycle_switch(gw_worker_t *w, gw_wcycle_t *next);

/* Stop accepting on every view and close the listening sockets (stopping). */
void gw_wcycle_close_listeners(gw_worker_t *w);

/* An accept completed. */
void gw_wcycle_handle_accept(gw_worker_t *w, struct io_uring_cqe *cqe);

/* A connection of wc went away: release wc if it is old and drained. */
void gw_wcycle_conn_gone(gw_worker_t *w, gw_wcycle_t *wc);

/* At exit: release every view (modules' state, listeners). */
void gw_wcycle_free_all(gw_worker_t *w);

#endif
