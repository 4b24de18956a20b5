#include "ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "buf.h"
#include "gw.h"

/* liburing 2.3 predates these (kernel 6.12 ABI). */
#define GW_IORING_FEAT_MIN_TIMEOUT (1u << 15)
#define GW_INT_FLAG_REG_RING 1 /* liburing's private flag: the ring fd is registered */

/*
 * Setup flags, best first. DEFER_TASKRUN (6.1) runs completion work only when
 * we enter the kernel to wait, in our thread: no IPIs, no task work
 * interrupting the request path; it requires SINGLE_ISSUER (6.0), which is
 * true by design (one thread per ring). COOP_TASKRUN (5.19) is the next best:
 * task work is not forced by interrupting us. SUBMIT_ALL keeps submitting
 * the rest of a batch when one SQE fails. Plain setup is the floor.
 */
static const struct {
    unsigned flags;
    uint32_t features;
} setups[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
     GW_RING_SINGLE_ISSUER | GW_RING_DEFER_TASKRUN},
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, GW_RING_COOP_TASKRUN},
    {0, 0},
};

/* setsockopt through the ring: IORING_OP_URING_CMD + SOCKET_URING_OP_SETSOCKOPT
 * (6.7). liburing 2.3 has no helper: level/optname share `addr`, optlen sits
 * in `file_index`, optval in `addr3`, as in the kernel's uapi. */
void gw_ring_prep_setsockopt(struct io_uring_sqe *sqe, int fd, int level, int optname, const void *optval,
                             uint32_t optlen)
{
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fd;
    sqe->cmd_op = 3; /* SOCKET_URING_OP_SETSOCKOPT */
    sqe->addr = (uint64_t)(uint32_t)level | ((uint64_t)(uint32_t)optname << 32);
    sqe->file_index = optlen;
    sqe->addr3 = (uint64_t)(uintptr_t)optval;
}

/*
 * Can sockets be made and tuned through the ring? IORING_OP_SOCKET is in the
 * opcode probe (5.19); setsockopt by URING_CMD (6.7) is only known by trying
 * it once, on a throwaway socket, before the loop starts.
 */
static int probe_socket_cmd(struct io_uring *ring, const struct io_uring_probe *probe)
{
    static const int one = 1;
    struct io_uring_sqe *sqe;
    struct io_uring_cqe *cqe;
    int ok = 0, fd;

    if (!io_uring_opcode_supported(probe, IORING_OP_SOCKET) || !io_uring_opcode_supported(probe, IORING_OP_URING_CMD))
        return 0;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    sqe = io_uring_get_sqe(ring);
    gw_ring_prep_setsockopt(sqe, fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    io_uring_sqe_set_data64(sqe, 0);
    if (io_uring_submit_and_wait(ring, 1) >= 0 && io_uring_peek_cqe(ring, &cqe) == 0) {
        ok = cqe->res == 0;
        io_uring_cqe_seen(ring, cqe);
    }
    close(fd);
    return ok;
}

/*
 * GW_IO_URING_DISABLE=defer_taskrun,coop_taskrun,min_timeout,socket_cmd,multishot,reg_ring
 * pretends the kernel lacks those features, so the fallbacks are tested on a
 * kernel that has them all (scripts/test runs the integration tests so).
 */
static uint32_t disabled_features(void)
{
    static const struct {
        const char *name;
        uint32_t feature;
    } names[] = {
        {"defer_taskrun", GW_RING_DEFER_TASKRUN}, {"coop_taskrun", GW_RING_COOP_TASKRUN},
        {"min_timeout", GW_RING_MIN_TIMEOUT},     {"socket_cmd", GW_RING_SOCKET_CMD},
        {"multishot", GW_RING_RECV_MULTISHOT},    {"reg_ring", GW_RING_REG_RING_FD},
    };
    const char *env = getenv("GW_IO_URING_DISABLE");
    uint32_t off = 0;

    for (size_t i = 0; env && i < sizeof(names) / sizeof(names[0]); i++)
        if (strstr(env, names[i].name))
            off |= names[i].feature;
    return off;
}

/*
 * GW_RING_BUFFERS=N gives each worker's provided-buffer ring N buffers instead
 * of the built-in count, so tests can run the ring dry with a few connections
 * (tests/integration/test_ring_buffers.py). A value that is not a power of two
 * from GW_RING_BUFFERS_MIN to 32768 (gw_bufring_init's limit) is refused, never
 * ignored: a test that believes it shrank the ring must not silently run with
 * the full one.
 */
int gw_ring_env_buffers(uint32_t dflt, char *msg, size_t size)
{
    const char *env = getenv("GW_RING_BUFFERS");
    unsigned long n = 0;
    const char *p;

    if (env == NULL)
        return (int)dflt;
    for (p = env; *p >= '0' && *p <= '9' && n <= 32768; p++)
        n = n * 10 + (unsigned long)(*p - '0');
    if (p == env || *p != '\0' || n < GW_RING_BUFFERS_MIN || n > 32768 || (n & (n - 1))) {
        snprintf(msg, size, "GW_RING_BUFFERS=\"%.32s\": must be a power of two from %u to 32768", env,
                 GW_RING_BUFFERS_MIN);
        return -EINVAL;
    }
    return (int)n;
}

int gw_ring_init(gw_worker_t *w, unsigned sq_entries, uint32_t nbufs, uint32_t buf_size, const char **why)
{
    struct io_uring_params p;
    struct io_uring_probe *probe;
    uint32_t off = disabled_features();
    int ret = -EINVAL;

    for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
        if (setups[i].features & off)
            continue;
        memset(&p, 0, sizeof(p));
        /* A CQ twice the SQ: multishot ops post many CQEs per SQE. */
        p.flags = setups[i].flags | IORING_SETUP_CQSIZE;
        p.cq_entries = sq_entries * 2;
        ret = io_uring_queue_init_params(sq_entries, &w->ring, &p);
        if (ret == 0) {
            w->ring_features = setups[i].features;
            break;
        }
    }
    if (ret < 0) {
        *why = "io_uring_queue_init";
        return ret;
    }
    /* sendmsg headers live in per-iteration scratch: that is only safe when the
     * kernel copies them at submit time (5.5+). EXT_ARG (5.11) lets us wait
     * with a timeout without spending an SQE on it. */
    if (!(p.features & IORING_FEAT_SUBMIT_STABLE) || !(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&w->ring);
        *why = "kernel too old (io_uring needs SUBMIT_STABLE and EXT_ARG, Linux 5.11+)";
        return -ENOTSUP;
    }
    if (p.features & GW_IORING_FEAT_MIN_TIMEOUT)
        w->ring_features |= GW_RING_MIN_TIMEOUT;
    /* Registering the ring fd skips an fd lookup on every io_uring_enter (5.18). */
    if (!(off & GW_RING_REG_RING_FD) && io_uring_register_ring_fd(&w->ring) == 1)
        w->ring_features |= GW_RING_REG_RING_FD;

    /* Multishot recv came in 6.0 together with SEND_ZC; the opcode probe is the
     * cheapest witness. Without it each recv is re-armed after one completion. */
    probe = io_uring_get_probe_ring(&w->ring);
    if (probe) {
        if (io_uring_opcode_supported(probe, IORING_OP_SEND_ZC))
            w->ring_features |= GW_RING_RECV_MULTISHOT;
        if (probe_socket_cmd(&w->ring, probe))
            w->ring_features |= GW_RING_SOCKET_CMD;
        io_uring_free_probe(probe);
    }
    w->ring_features &= ~off;

    ret = gw_bufring_init(&w->bufs, &w->ring, 0, nbufs, buf_size);
    if (ret < 0) {
        io_uring_queue_exit(&w->ring);
        *why = "provided buffer ring (Linux 5.19+)";
        return ret;
    }
    return 0;
}

void gw_ring_exit(gw_worker_t *w)
{
    gw_bufring_free(&w->bufs, &w->ring);
    io_uring_queue_exit(&w->ring);
}

struct io_uring_sqe *gw_ring_sqe(gw_worker_t *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

    while (gw_unlikely(sqe == NULL)) {
        /* SQ full: hand the batch to the kernel now. The sendmsg scratch is
         * consumed by this submit (SUBMIT_STABLE), so it can be reused. */
        io_uring_submit(&w->ring);
        w->iov_used = 0;
        w->msg_used = 0;
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

int gw_ring_submit_and_wait(gw_worker_t *w, unsigned wait_nr, int64_t timeout_ms, unsigned min_wait_us)
{
    struct io_uring *ring = &w->ring;
    struct io_uring_sq *sq = &ring->sq;
    struct __kernel_timespec ts;
    struct io_uring_getevents_arg arg = {0};
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    unsigned tail = sq->sqe_tail, submit;
    int fd = ring->ring_fd;
    long ret;

    /* Publish the SQEs (liburing's __io_uring_flush_sq, which is private):
     * slots are pre-mapped 1:1, so moving the tail is all it takes. */
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        __atomic_store_n(sq->ktail, tail, __ATOMIC_RELEASE);
    }
    submit = tail - __atomic_load_n(sq->khead, __ATOMIC_ACQUIRE);
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (timeout_ms % 1000) * 1000000;
        arg.ts = (uint64_t)(uintptr_t)&ts;
    }
    if (w->ring_features & GW_RING_MIN_TIMEOUT)
        arg.pad = min_wait_us; /* min_wait_usec in the 6.12 ABI */
    else
        wait_nr = 1;
    if (ring->int_flags & GW_INT_FLAG_REG_RING) {
        flags |= IORING_ENTER_REGISTERED_RING;
        fd = ring->enter_ring_fd;
    }
    ret = syscall(__NR_io_uring_enter, fd, submit, wait_nr, flags, &arg, sizeof(arg));
    return ret < 0 ? -errno : (int)ret;
}

void gw_ring_describe(const gw_worker_t *w, char *buf, size_t size)
{
    uint32_t f = w->ring_features;

    snprintf(buf, size, "%s%s%s%s%s, %u x %u B provided buffers",
             (f & GW_RING_DEFER_TASKRUN)  ? "SINGLE_ISSUER+DEFER_TASKRUN"
             : (f & GW_RING_COOP_TASKRUN) ? "COOP_TASKRUN"
                                          : "plain setup",
             (f & GW_RING_REG_RING_FD) ? ", registered ring fd" : "",
             (f & GW_RING_RECV_MULTISHOT) ? ", multishot recv" : ", single-shot recv",
             (f & GW_RING_MIN_TIMEOUT) ? ", batched waits" : "",
             (f & GW_RING_SOCKET_CMD) ? ", sockets through the ring" : "", w->bufs.nbufs,
             w->bufs.size);
}
