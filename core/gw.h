/*
 * Small definitions every module shares: return conventions, branch hints,
 * container_of. Includes nothing from the project.
 */
#ifndef GW_GW_H
#define GW_GW_H

#include <stddef.h>
#include <stdint.h>

#define GW_VERSION "0.1.0"

/* Parser return convention (STYLE.md 7): >= 0 bytes consumed, or one of these. */
#define GW_AGAIN (-2) /* need more input */
#define GW_ERR (-1)   /* malformed input */

#define gw_likely(x) __builtin_expect(!!(x), 1)
#define gw_unlikely(x) __builtin_expect(!!(x), 0)

#define gw_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define GW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define gw_min(a, b) ((a) < (b) ? (a) : (b))
#define gw_max(a, b) ((a) > (b) ? (a) : (b))

#endif
