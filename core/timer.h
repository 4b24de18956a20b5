/*
 * A hashed timer wheel, one per worker. Arming, re-arming and cancelling are
 * O(1) list operations, which matters because every read on a connection
 * pushes its timeout back. Timers further out than the wheel's span sit in the
 * slot they hash to and are re-inserted when their slot comes round early.
 */
#ifndef GW_TIMER_H
#define GW_TIMER_H

#include "timer-t.h"

void gw_wheel_init(gw_wheel_t *wh, void *owner, uint64_t now_ms);

/* Arm (or re-arm) t to fire cb at now_ms + after_ms. */
void gw_timer_set(gw_wheel_t *wh, gw_timer_t *t, gw_timer_cb cb, uint64_t now_ms, uint64_t after_ms);

void gw_timer_cancel(gw_wheel_t *wh, gw_timer_t *t);

static inline int gw_timer_armed(const gw_timer_t *t)
{
    return t->prev != 0;
}

/* Fire every timer due at now_ms. Callbacks may arm or cancel any timer. Returns how many fired. */
unsigned gw_wheel_run(gw_wheel_t *wh, uint64_t now_ms);

/*
 * Milliseconds until the next slot holding a timer comes due (0 when one is
 * already due), or -1 when no timer is armed. Used as the ring wait's timeout.
 */
int64_t gw_wheel_next(const gw_wheel_t *wh, uint64_t now_ms);

#endif
