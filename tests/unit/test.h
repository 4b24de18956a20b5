/*
 * A minimal unit-test harness: CHECK macros that report file:line and keep
 * going, and a summary that sets the exit status meson reads (0 pass, 1 fail,
 * 77 skipped).
 */
#ifndef GW_TEST_H
#define GW_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int gw_test_checks;
static int gw_test_failures;

#define CHECK(cond)                                                                                    \
    do {                                                                                               \
        gw_test_checks++;                                                                              \
        if (!(cond)) {                                                                                 \
            gw_test_failures++;                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                   \
        }                                                                                              \
    } while (0)

#define CHECK_INT(a, b)                                                                                \
    do {                                                                                               \
        long long _a = (long long)(a), _b = (long long)(b);                                            \
        gw_test_checks++;                                                                              \
        if (_a != _b) {                                                                                \
            gw_test_failures++;                                                                        \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, _a, #b, \
                    _b);                                                                               \
        }                                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                                \
    do {                                                                                               \
        const char *_a = (a), *_b = (b);                                                               \
        gw_test_checks++;                                                                              \
        if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) {                                         \
            gw_test_failures++;                                                                        \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,          \
                    _a ? _a : "(null)", _b ? _b : "(null)");                                           \
        }                                                                                              \
    } while (0)

/* Substring check, for error messages: CHECK_CONTAINS(err.msg, "in test.conf:3"). */
#define CHECK_CONTAINS(hay, needle)                                                                    \
    do {                                                                                               \
        const char *_h = (hay), *_n = (needle);                                                        \
        gw_test_checks++;                                                                              \
        if (_h == NULL || strstr(_h, _n) == NULL) {                                                    \
            gw_test_failures++;                                                                        \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,             \
                    _h ? _h : "(null)", _n);                                                           \
        }                                                                                              \
    } while (0)

/* Run one test function and name it in the output. */
#define RUN(fn)                                                                                        \
    do {                                                                                               \
        int _before = gw_test_failures;                                                                \
        fn();                                                                                          \
        fprintf(stderr, "%s %s\n", gw_test_failures == _before ? "ok  " : "FAIL", #fn);                \
    } while (0)

static inline int gw_test_done(void)
{
    fprintf(stderr, "%d checks, %d failed\n", gw_test_checks, gw_test_failures);
    return gw_test_failures ? 1 : 0;
}

#endif
