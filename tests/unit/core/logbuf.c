/*
 * Tests for core/logbuf.c on a real io_uring and files in a temporary
 * directory: lines written at the end of an iteration without buffer=,
 * held until full with buffer=, written by the flush= timer, kept in order
 * while a write is in flight, one buffer per file, the size limit, what a
 * stop writes, and that a reopen (dup3 onto the descriptor, as log.c does)
 * sends later lines to the new file with none lost. Exits 77 without io_uring.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/logbuf.h"
#include "core/ring.h"
#include "core/timer.h"
#include "tests/unit/test.h"

static char dir[] = "/tmp/gw-logbuf-XXXXXX";

static gw_worker_t *new_worker(void)
{
    gw_worker_t *w = aligned_alloc(GW_CACHE_LINE, sizeof(*w));

    memset(w, 0, sizeof(*w));
    if (io_uring_queue_init(64, &w->ring, 0) < 0) {
        free(w);
        return NULL;
    }
    w->now = 1000;
    gw_wheel_init(&w->timers, w, w->now);
    return w;
}

static void free_worker(gw_worker_t *w)
{
    gw_logbuf_free_all(w);
    io_uring_queue_exit(&w->ring);
    free(w);
}

/* One loop iteration as the worker's: flush what is due, submit, dispatch, run timers. */
static void iterate(gw_worker_t *w, int stopping)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000};
    unsigned head, n = 0;

    gw_logbuf_flush(w, stopping);
    io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
    io_uring_for_each_cqe(&w->ring, head, cqe)
    {
        if (gw_ud_op(cqe->user_data) == GW_OP_LOGWRITE)
            gw_logbuf_handle_write(w, cqe);
        n++;
    }
    io_uring_cq_advance(&w->ring, n);
    gw_wheel_run(&w->timers, w->now);
}

static int open_log(const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static size_t file_size(const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static char *slurp(const char *name)
{
    static char buf[1 << 20];
    char path[256];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY);
    n = fd < 0 ? 0 : read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    if (fd >= 0)
        close(fd);
    return buf;
}

static void test_unbuffered_written_each_iteration(void)
{
    gw_worker_t *w = new_worker();
    int fd = open_log("a.log");

    gw_logbuf_append(w, fd, "one\n", 4, 0, 0);
    gw_logbuf_append(w, fd, "two\n", 4, 0, 0);
    CHECK_INT(file_size("a.log"), 0); /* nothing before the iteration ends */
    for (int i = 0; i < 5 && file_size("a.log") < 8; i++)
        iterate(w, 0);
    CHECK_STR(slurp("a.log"), "one\ntwo\n");
    CHECK_INT(gw_stat_get(&w->st.log_writes), 1); /* one write for both lines */
    CHECK(gw_logbuf_idle(w));
    free_worker(w);
    close(fd);
}

static void test_buffer_waits_until_full(void)
{
    gw_worker_t *w = new_worker();
    int fd = open_log("b.log");
    char line[100];

    memset(line, 'x', sizeof(line) - 1);
    line[99] = '\n';
    for (int i = 0; i < 9; i++)
        gw_logbuf_append(w, fd, line, 100, 1000, 0);
    for (int i = 0; i < 3; i++)
        iterate(w, 0);
    CHECK_INT(file_size("b.log"), 0);
    gw_logbuf_append(w, fd, line, 100, 1000, 0); /* the 1000th byte: full */
    for (int i = 0; i < 5 && file_size("b.log") < 1000; i++)
        iterate(w, 0);
    CHECK_INT(file_size("b.log"), 1000);
    free_worker(w);
    close(fd);
}

static void test_flush_timer(void)
{
    gw_worker_t *w = new_worker();
    int fd = open_log("c.log");

    gw_logbuf_append(w, fd, "late\n", 5, 65536, 500);
    iterate(w, 0);
    CHECK_INT(file_size("c.log"), 0);
    w->now += 600; /* the timer's time has come */
    for (int i = 0; i < 5 && file_size("c.log") < 5; i++)
        iterate(w, 0);
    CHECK_STR(slurp("c.log"), "late\n");
    free_worker(w);
    close(fd);
}

static void test_order_kept_while_writing(void)
{
    gw_worker_t *w = new_worker();
    int fd = open_log("d.log"), expect = 0;
    char line[32], *p;

    for (int i = 0; i < 2000; i++) {
        int n = snprintf(line, sizeof(line), "%d\n", i);

        gw_logbuf_append(w, fd, line, (size_t)n, 0, 0);
        if (i % 7 == 0)
            iterate(w, 0); /* some lines arrive while a write is in flight */
    }
    for (int i = 0; i < 50 && !gw_logbuf_idle(w); i++)
        iterate(w, 0);
    CHECK(gw_logbuf_idle(w));
    p = slurp("d.log");
    while (*p) {
        if (atoi(p) != expect)
            break;
        expect++;
        p = strchr(p, '\n') + 1;
    }
    CHECK_INT(expect, 2000);
    free_worker(w);
    close(fd);
}

static void test_stop_writes_everything(void)
{
    gw_worker_t *w = new_worker();
    int fd = open_log("e.log");

    gw_logbuf_append(w, fd, "kept\n", 5, 65536, 0); /* would wait for a full buffer */
    iterate(w, 0);
    CHECK_INT(file_size("e.log"), 0);
    for (int i = 0; i < 5 && !gw_logbuf_idle(w); i++)
        iterate(w, 1); /* stopping: everything is due */
    CHECK_STR(slurp("e.log"), "kept\n");
    gw_logbuf_append(w, fd, "at exit\n", 8, 65536, 0);
    free_worker(w); /* the last lines, written synchronously */
    CHECK_STR(slurp("e.log"), "kept\nat exit\n");
    close(fd);
}

static void test_limit_drops_and_counts(void)
{
    gw_worker_t *w = new_worker();
    int fd = open_log("f.log");
    static char big[GW_LOGBUF_MAX];

    memset(big, 'y', sizeof(big));
    gw_logbuf_append(w, fd, big, sizeof(big), 0, 0);
    gw_logbuf_append(w, fd, "z\n", 2, 0, 0); /* over the limit: dropped */
    CHECK_INT(gw_stat_get(&w->st.log_dropped), 2);
    for (int i = 0; i < 50 && !gw_logbuf_idle(w); i++)
        iterate(w, 0);
    CHECK_INT(file_size("f.log"), sizeof(big));
    free_worker(w);
    close(fd);
}

static void test_reopen_in_place(void)
{
    gw_worker_t *w = new_worker();
    int fd = open_log("g.log"), fresh;
    char from[256], to[256];

    gw_logbuf_append(w, fd, "before\n", 7, 0, 0);
    for (int i = 0; i < 5 && file_size("g.log") < 7; i++)
        iterate(w, 0);
    snprintf(from, sizeof(from), "%s/g.log", dir);
    snprintf(to, sizeof(to), "%s/g.log.1", dir);
    CHECK(rename(from, to) == 0);
    gw_logbuf_append(w, fd, "buffered\n", 9, 4096, 0); /* gathered before the reopen */
    fresh = open_log("g.log");
    CHECK(dup3(fresh, fd, O_CLOEXEC) == fd);
    close(fresh);
    gw_logbuf_append(w, fd, "after\n", 6, 4096, 0);
    for (int i = 0; i < 5 && !gw_logbuf_idle(w); i++)
        iterate(w, 1);
    CHECK_STR(slurp("g.log.1"), "before\n");
    CHECK_STR(slurp("g.log"), "buffered\nafter\n");
    free_worker(w);
    close(fd);
}

int main(void)
{
    struct io_uring probe;
    char cmd[64];

    if (io_uring_queue_init(2, &probe, 0) < 0) {
        fprintf(stderr, "io_uring unavailable: skipped\n");
        return 77;
    }
    io_uring_queue_exit(&probe);
    if (mkdtemp(dir) == NULL)
        return 1;
    RUN(test_unbuffered_written_each_iteration);
    RUN(test_buffer_waits_until_full);
    RUN(test_flush_timer);
    RUN(test_order_kept_while_writing);
    RUN(test_stop_writes_everything);
    RUN(test_limit_drops_and_counts);
    RUN(test_reopen_in_place);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return gw_test_done();
}
