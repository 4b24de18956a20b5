#include "ring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "gw.h"

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

int gw_ring_init(gw_worker_t *w, unsigned sq_entries, uint32_t nbufs, uint32_t buf_size, const char **why)
{
    struct io_uring_params p;
    struct io_uring_probe *probe;
    int ret = -EINVAL;

    for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
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
    /* Registering the ring fd skips an fd lookup on every io_uring_enter (5.18). */
    if (io_uring_register_ring_fd(&w->ring) == 1)
        w->ring_features |= GW_RING_REG_RING_FD;

    /* Multishot recv came in 6.0 together with SEND_ZC; the opcode probe is the
     * cheapest witness. Without it each recv is re-armed after one completion. */
    probe = io_uring_get_probe_ring(&w->ring);
    if (probe) {
        if (io_uring_opcode_supported(probe, IORING_OP_SEND_ZC))
            w->ring_features |= GW_RING_RECV_MULTISHOT;
        io_uring_free_probe(probe);
    }

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

void gw_ring_describe(const gw_worker_t *w, char *buf, size_t size)
{
    uint32_t f = w->ring_features;

    snprintf(buf, size, "%s%s%s%s, %u x %u B provided buffers",
             (f & GW_RING_DEFER_TASKRUN)  ? "SINGLE_ISSUER+DEFER_TASKRUN"
             : (f & GW_RING_COOP_TASKRUN) ? "COOP_TASKRUN"
                                          : "plain setup",
             (f & GW_RING_REG_RING_FD) ? ", registered ring fd" : "",
             (f & GW_RING_RECV_MULTISHOT) ? ", multishot recv" : ", single-shot recv", "", w->bufs.nbufs,
             w->bufs.size);
}
