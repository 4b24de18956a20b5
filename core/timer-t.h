/* Types of the per-worker timer wheel (see timer.h). */
#ifndef GW_TIMER_T_H
#define GW_TIMER_T_H

#include <stdint.h>

#define GW_WHEEL_BITS 12
#define GW_WHEEL_SLOTS (1u << GW_WHEEL_BITS) /* 4096 slots */
#define GW_WHEEL_TICK_MS 4u                  /* resolution; the wheel spans ~16 s, longer timers go round */

typedef struct gw_timer gw_timer_t;
typedef void (*gw_timer_cb)(void *owner, gw_timer_t *t);

/* Intrusive: lives inside the object it times. Unarmed when prev == NULL. */
struct gw_timer {
    gw_timer_t *next, *prev;
    uint64_t expire; /* absolute, ms on the worker's monotonic clock */
    gw_timer_cb cb;
};

typedef struct gw_wheel {
    gw_timer_t slots[GW_WHEEL_SLOTS]; /* list heads (circular, sentinel) */
    uint64_t busy[GW_WHEEL_SLOTS / 64]; /* bit per non-empty slot, to find the next expiry fast */
    uint64_t tick;                        /* last processed tick */
    uint32_t count;                       /* armed timers */
    void *owner;                          /* passed to callbacks */
} gw_wheel_t;

#endif
