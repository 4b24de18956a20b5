/*
 * The worker loop: flush output, give buffers back, submit and wait in one
 * io_uring_enter, dispatch every completion, run due timers. One syscall per
 * iteration however many connections had work.
 */
#include "worker.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "gw.h"
#include "log.h"
#include "logbuf.h"
#include "module.h"
#include "ring.h"
#include "timer.h"
#include "wcycle.h"

#define RING_ENTRIES 4096
#define BUF_COUNT 1024
#define BUF_SIZE 16384

/* Buffers per worker ring: BUF_COUNT, or GW_RING_BUFFERS read once by
 * gw_workers_check_env before any worker starts (read-only afterwards). */
static uint32_t ring_buffers = BUF_COUNT;

/* Batched waits (see worker_loop). Measured with bench/ on 2 cores: a tenth
 * of the exchange time cut syscalls/request at 64 connections from 1.26 to
 * 0.28 with +12% req/s; a fifth cost 15% req/s at 8 connections; an eighth
 * measured as well as a tenth (within noise) with fewer syscalls. */
#define BATCH_FRACTION 8
#define BATCH_MAX_US 200
#define BATCH_MIN_US 10
#define BATCH_NR 64

static void clock_update(gw_worker_t *w)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    w->now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    w->now = w->now_us / 1000u;
}

int gw_cpu_count(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        return CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

/* The n-th CPU this process may run on, so worker k lands on its own core. */
static int nth_cpu(int n)
{
    cpu_set_t set;
    int seen = 0;

    if (sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) == 0)
        return -1;
    n %= CPU_COUNT(&set);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &set) && seen++ == n)
            return cpu;
    return -1;
}

static void arm_wake(gw_worker_t *w)
{
    struct io_uring_sqe *sqe = gw_ring_sqe(w);

    io_uring_prep_read(sqe, w->wake_fd, &w->wake_buf, sizeof(w->wake_buf), 0);
    io_uring_sqe_set_data64(sqe, gw_ud(GW_OP_WAKE, 0, 0));
}

/* Stop accepting and ask every connection to wind down. */
static void begin_stop(gw_worker_t *w, int how)
{
    w->stopping = how;
    /* Closing the sockets refuses new connections at once. */
    gw_wcycle_close_listeners(w);
    if (how == GW_CMD_STOP_GRACEFUL) {
        for (uint32_t i = 0; i < w->used_hwm; i++) {
            gw_conn_t *c = &w->conns[i];

            if ((c->flags & GW_CONN_USED) && !(c->flags & GW_CONN_CLOSING) && c->ops && c->ops->on_stop)
                c->ops->on_stop(w, c);
        }
    }
}

static void notify(gw_worker_t *w, char what)
{
    if (write(w->notify_fd, &what, 1) < 0) {
        /* the main thread is gone too */
    }
}

/* The main thread loaded a new configuration: new connections get it. */
static void reload(gw_worker_t *w, gw_cycle_t *next)
{
    gw_wcycle_t *wc;

    if (w->stopping || (wc = gw_wcycle_new(w, next)) == NULL) {
        if (!w->stopping)
            gw_log(GW_LOG_ALERT, "worker %d: keeping the previous configuration", w->id);
        if (atomic_fetch_sub(&next->users, 1) == 1)
            notify(w, 'R');
        notify(w, 'A');
        return;
    }
    gw_wcycle_switch(w, wc);
    notify(w, 'A');
}

static void handle_wake(gw_worker_t *w, struct io_uring_cqe *cqe)
{
    int cmd = atomic_load(&w->cmd);
    gw_cycle_t *next = atomic_exchange(&w->reload_to, NULL);

    if (cmd != GW_CMD_NONE && w->stopping != GW_CMD_STOP_FAST)
        begin_stop(w, cmd);
    if (next)
        reload(w, next);
    if (cqe->res >= 0 || cqe->res == -EINTR || cqe->res == -EAGAIN)
        arm_wake(w);
}

static void dispatch(gw_worker_t *w, struct io_uring_cqe *cqe)
{
    uint64_t data = cqe->user_data;
    enum gw_op op = gw_ud_op(data);
    gw_conn_t *c;

    switch (op) {
    case GW_OP_ACCEPT:
        gw_wcycle_handle_accept(w, cqe);
        return;
    case GW_OP_WAKE:
        handle_wake(w, cqe);
        return;
    case GW_OP_LOGWRITE:
        gw_logbuf_handle_write(w, cqe);
        return;
    case GW_OP_NONE:
        return;
    default:
        break;
    }
    c = &w->conns[gw_ud_idx(data)];
    if (gw_unlikely(!(c->flags & GW_CONN_USED) || (c->gen & 0xffffffu) != gw_ud_gen(data))) {
        /* Cannot happen while inflight accounting holds; never leak a buffer if it does. */
        if (cqe->flags & IORING_CQE_F_BUFFER) {
            uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

            gw_buf_taken(&w->bufs, bid);
            gw_buf_unref(&w->bufs, bid);
        }
        gw_log(GW_LOG_ALERT, "stale completion op %d slot %u", (int)op, gw_ud_idx(data));
        return;
    }
    switch (op) {
    case GW_OP_RECV:
        gw_conn_handle_recv(w, c, cqe);
        break;
    case GW_OP_SEND:
        gw_conn_handle_send(w, c, cqe->res);
        break;
    case GW_OP_CONNECT:
        gw_conn_handle_connect(w, c, cqe->res);
        break;
    case GW_OP_SOCKET:
        gw_conn_handle_socket(w, c, cqe->res);
        break;
    case GW_OP_CLOSE:
    case GW_OP_CANCEL:
    case GW_OP_SHUTDOWN:
    case GW_OP_SOCKOPT:
        gw_conn_handle_done(w, c);
        break;
    default:
        break;
    }
    gw_conn_maybe_free(w, c);
}

static int worker_setup(gw_worker_t *w)
{
    const gw_cycle_t *cy = w->cycle;
    const char *why = "";
    char desc[256];
    int ret;

    if (w->cpu >= 0) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    ret = gw_ring_init(w, RING_ENTRIES, ring_buffers, BUF_SIZE, &why);
    if (ret < 0) {
        gw_log(GW_LOG_EMERG, "worker %d: %s failed (%d: %s)", w->id, why, -ret, strerror(-ret));
        return ret;
    }
    w->nconns = (uint32_t)cy->worker_connections;
    /* calloc of a large table is fresh mmap'ed zero pages: untouched slots cost nothing. */
    w->conns = calloc(w->nconns, sizeof(*w->conns));
    if (w->conns == NULL)
        return -ENOMEM;
    clock_update(w);
    gw_wheel_init(&w->timers, w, w->now);
    w->cur = gw_wcycle_new(w, cy);
    if (w->cur == NULL)
        return -ENOMEM;
    gw_wcycle_arm(w, w->cur);
    arm_wake(w);
    gw_ring_describe(w, desc, sizeof(desc));
    gw_log(GW_LOG_INFO, "worker %d on cpu %d: io_uring %s", w->id, w->cpu, desc);
    return 0;
}

static void worker_loop(gw_worker_t *w)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    for (;;) {
        unsigned min_wait;
        int64_t wait;
        int ret;

        gw_conn_flush_all(w);
        gw_conn_rearm_starved(w);
        gw_bufring_commit(&w->bufs);
        gw_logbuf_flush(w, w->stopping != 0);
        /* Stopping waits for the log lines already written to reach the file. */
        if ((w->stopping == GW_CMD_STOP_FAST || (w->stopping && w->active == 0)) && gw_logbuf_idle(w))
            break;
        wait = gw_wheel_next(&w->timers, w->now);
        /* Under load (the last wake found several completions), let them pile
         * up for an eighth of an exchange's average duration, at most 200 µs:
         * one enter then serves many exchanges. Quiet, or with exchanges so
         * short that waiting would cost them: wake for the first completion. */
        min_wait = w->exchange_us / BATCH_FRACTION;
        if (min_wait > BATCH_MAX_US)
            min_wait = BATCH_MAX_US;
        if (n >= 2 && min_wait >= BATCH_MIN_US)
            ret = gw_ring_submit_and_wait(w, BATCH_NR, wait, min_wait);
        else
            ret = gw_ring_submit_and_wait(w, 1, wait, 0);
        w->iov_used = 0;
        w->msg_used = 0;
        w->stats.loops++;
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN) {
            gw_log(GW_LOG_ALERT, "worker %d: io_uring_enter failed (%d: %s)", w->id, -ret, strerror(-ret));
            w->exit_code = 1;
            break;
        }
        clock_update(w);
        n = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            dispatch(w, cqe);
            n++;
        }
        io_uring_cq_advance(&w->ring, n);
        w->stats.cqes += n;
        gw_wheel_run(&w->timers, w->now);
    }
}

/*
 * Cancel every request still in the kernel and wait (briefly) for them to
 * finish. Without this, sockets held by pending requests (a listener's
 * multishot accept above all) outlive the process: the ring is torn down
 * asynchronously after exit, and the port would keep accepting meanwhile.
 */
static void cancel_everything(gw_worker_t *w)
{
    struct io_uring_sqe *sqe;
    struct io_uring_cqe *cqe;

    if (!w->stopping)
        gw_wcycle_close_listeners(w);
    sqe = gw_ring_sqe(w);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, gw_ud(GW_OP_NONE, 0, 0));
    io_uring_submit(&w->ring);
    for (;;) {
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
        unsigned head, n = 0;

        if (io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL) < 0)
            break;
        io_uring_for_each_cqe(&w->ring, head, cqe) n++;
        io_uring_cq_advance(&w->ring, n);
        if (n == 0)
            break;
    }
}

static void *worker_main(void *arg)
{
    gw_worker_t *w = arg;

    char ok = 'O', failed = 'F';

    gw_log_set_thread_id(w->id);
    if (worker_setup(w) < 0) {
        w->exit_code = 1;
        notify(w, failed);
        return NULL;
    }
    notify(w, ok);
    worker_loop(w);
    gw_log(GW_LOG_INFO, "worker %d: %llu loop iterations, %llu completions (%.1f per iteration), %llu accepted", w->id,
           (unsigned long long)w->stats.loops, (unsigned long long)w->stats.cqes,
           w->stats.loops ? (double)w->stats.cqes / (double)w->stats.loops : 0.0,
           (unsigned long long)w->stats.accepted);
    cancel_everything(w);
    gw_conn_release_layers(w);
    /* Tell the main thread we are gone (it waits for this, or for a signal). */
    gw_wcycle_free_all(w);
    notify(w, 'X');
    return NULL;
}

int gw_workers_check_env(char *msg, size_t size)
{
    int n = gw_ring_env_buffers(BUF_COUNT, msg, size);

    if (n < 0)
        return n;
    ring_buffers = (uint32_t)n;
    return 0;
}

/* Every worker, for scrapes (gw_workers_all); set while the workers exist. */
static _Atomic(gw_worker_t *) all_workers;
static _Atomic int all_count;

gw_worker_t *gw_workers_all(int *n)
{
    *n = atomic_load(&all_count);
    return atomic_load(&all_workers);
}

gw_worker_t *gw_workers_start(const gw_cycle_t *cy, int n, int notify_fd, int *err)
{
    /* Aligned: each worker's counters (w->st) start on their own cache line. */
    gw_worker_t *ws = aligned_alloc(GW_CACHE_LINE, (size_t)n * sizeof(*ws));

    if (ws == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    memset(ws, 0, (size_t)n * sizeof(*ws));
    atomic_store(&all_count, n);
    atomic_store(&all_workers, ws);
    for (int i = 0; i < n; i++) {
        gw_worker_t *w = &ws[i];

        w->id = i + 1;
        w->cpu = nth_cpu(i);
        w->cycle = cy;
        w->notify_fd = notify_fd;
        w->wake_fd = eventfd(0, EFD_CLOEXEC);
        if (w->wake_fd < 0 || (*err = -pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
            if (w->wake_fd < 0)
                *err = -errno;
            gw_workers_signal(ws, i, GW_CMD_STOP_FAST);
            atomic_store(&all_count, i);
            gw_workers_join(ws, i);
            return NULL;
        }
    }
    return ws;
}

void gw_workers_reload(gw_worker_t *ws, int n, gw_cycle_t *next)
{
    for (int i = 0; i < n; i++) {
        uint64_t one = 1;

        atomic_store(&ws[i].reload_to, next);
        if (write(ws[i].wake_fd, &one, sizeof(one)) < 0) {
            /* the counter cannot overflow with these few writes */
        }
    }
}

void gw_workers_signal(gw_worker_t *ws, int n, int cmd)
{
    for (int i = 0; i < n; i++) {
        uint64_t one = 1;

        atomic_store(&ws[i].cmd, cmd);
        if (write(ws[i].wake_fd, &one, sizeof(one)) < 0) {
            /* the counter cannot overflow with these few writes */
        }
    }
}

static void worker_free(gw_worker_t *w)
{
    if (w->conns) {
        for (uint32_t i = 0; i < w->used_hwm; i++) {
            gw_conn_t *c = &w->conns[i];

            if (c->flags & GW_CONN_USED) {
                gw_segq_clear(&c->out, &w->segs, &w->bufs);
                if (!(c->flags & GW_CONN_CLOSING))
                    close(c->fd);
            }
        }
    }
    gw_logbuf_free_all(w);
    if (w->bufs.br)
        gw_ring_exit(w);
    gw_seg_cache_free(&w->segs);
    free(w->conns);
    free(w->starved);
    close(w->wake_fd);
}

int gw_workers_join(gw_worker_t *ws, int n)
{
    int rc = 0;

    for (int i = 0; i < n; i++) {
        pthread_join(ws[i].thread, NULL);
        rc |= ws[i].exit_code;
        worker_free(&ws[i]);
    }
    atomic_store(&all_workers, NULL);
    atomic_store(&all_count, 0);
    free(ws);
    return rc;
}
