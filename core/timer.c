#include "timer.h"

#include <string.h>

static uint64_t tick_of(uint64_t ms)
{
    return ms / GW_WHEEL_TICK_MS;
}

void gw_wheel_init(gw_wheel_t *wh, void *owner, uint64_t now_ms)
{
    memset(wh->busy, 0, sizeof(wh->busy));
    for (unsigned i = 0; i < GW_WHEEL_SLOTS; i++)
        wh->slots[i].next = wh->slots[i].prev = &wh->slots[i];
    wh->tick = tick_of(now_ms);
    wh->count = 0;
    wh->owner = owner;
}

static void unlink_timer(gw_wheel_t *wh, gw_timer_t *t)
{
    gw_timer_t *next = t->next;

    t->prev->next = next;
    next->prev = t->prev;
    if (next == t->prev && (uintptr_t)next >= (uintptr_t)wh->slots &&
        (uintptr_t)next < (uintptr_t)(wh->slots + GW_WHEEL_SLOTS)) {
        /* the slot's sentinel is alone again (a timer parked in gw_wheel_run's list is not in a slot) */
        unsigned slot = (unsigned)(next - wh->slots);

        wh->busy[slot / 64] &= ~(1ull << (slot % 64));
    }
    t->next = t->prev = NULL;
    wh->count--;
}

static void link_timer(gw_wheel_t *wh, gw_timer_t *t)
{
    uint64_t tick = tick_of(t->expire);
    unsigned slot;
    gw_timer_t *head;

    /* A timer already due goes in the next slot to process, never behind it. */
    if (tick <= wh->tick)
        tick = wh->tick + 1;
    slot = (unsigned)(tick & (GW_WHEEL_SLOTS - 1));
    head = &wh->slots[slot];
    t->next = head;
    t->prev = head->prev;
    head->prev->next = t;
    head->prev = t;
    wh->busy[slot / 64] |= 1ull << (slot % 64);
    wh->count++;
}

void gw_timer_set(gw_wheel_t *wh, gw_timer_t *t, gw_timer_cb cb, uint64_t now_ms, uint64_t after_ms)
{
    if (t->prev)
        unlink_timer(wh, t);
    t->cb = cb;
    t->expire = now_ms + after_ms;
    link_timer(wh, t);
}

void gw_timer_cancel(gw_wheel_t *wh, gw_timer_t *t)
{
    if (t->prev)
        unlink_timer(wh, t);
}

unsigned gw_wheel_run(gw_wheel_t *wh, uint64_t now_ms)
{
    uint64_t target = tick_of(now_ms);
    unsigned fired = 0;

    /* Catch up at most one full turn: every slot is visited once. */
    if (target > wh->tick + GW_WHEEL_SLOTS)
        wh->tick = target - GW_WHEEL_SLOTS;
    while (wh->tick < target) {
        unsigned slot = (unsigned)(++wh->tick & (GW_WHEEL_SLOTS - 1));
        gw_timer_t *head = &wh->slots[slot];
        gw_timer_t pending = {.next = &pending, .prev = &pending};

        if (!(wh->busy[slot / 64] & (1ull << (slot % 64))))
            continue;
        /* Move the slot aside so callbacks re-arming into this slot don't loop forever. */
        pending.next = head->next;
        pending.prev = head->prev;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        head->next = head->prev = head;
        wh->busy[slot / 64] &= ~(1ull << (slot % 64));
        while (pending.next != &pending) {
            gw_timer_t *t = pending.next;

            pending.next = t->next;
            t->next->prev = &pending;
            t->next = t->prev = NULL;
            wh->count--;
            if (t->expire > now_ms) {
                link_timer(wh, t); /* a later turn of the wheel */
                continue;
            }
            fired++;
            t->cb(wh->owner, t);
        }
    }
    return fired;
}

int64_t gw_wheel_next(const gw_wheel_t *wh, uint64_t now_ms)
{
    uint64_t now_tick = tick_of(now_ms);

    if (wh->count == 0)
        return -1;
    /* Scan the busy bitmap from the slot after the last processed one. */
    for (uint64_t i = 1; i <= GW_WHEEL_SLOTS; i++) {
        uint64_t tick = wh->tick + i;
        unsigned slot = (unsigned)(tick & (GW_WHEEL_SLOTS - 1));
        uint64_t word = wh->busy[slot / 64] >> (slot % 64);

        if (word == 0) {
            i += 63 - (slot % 64); /* skip the rest of this word */
            continue;
        }
        if (!(word & 1))
            continue;
        if (tick <= now_tick)
            return 0;
        return (int64_t)(tick * GW_WHEEL_TICK_MS - now_ms);
    }
    return (int64_t)GW_WHEEL_SLOTS * GW_WHEEL_TICK_MS;
}
