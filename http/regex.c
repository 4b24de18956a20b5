#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_regex {
    pcre2_code *code;
};

/*
 * Match data holds the ovector: it is written by every match, so it cannot
 * live in the (shared, read-only) configuration. One per thread, sized for
 * $0..$9; a regex with more groups still matches (pcre2_match returns 0).
 * Created on first use, freed by gw_regex_thread_exit.
 */
static __thread pcre2_match_data *tls_md;

gw_regex_t *gw_regex_compile(const char *pattern, int caseless, char *msg, size_t size)
{
    gw_regex_t *re;
    int errcode;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, caseless ? PCRE2_CASELESS : 0,
                                     &errcode, &off, NULL);

    if (code == NULL) {
        PCRE2_UCHAR text[256];
        size_t plen = strlen(pattern);

        pcre2_get_error_message(errcode, text, sizeof(text));
        if (off >= plen) /* nginx leaves out an empty "at" */
            snprintf(msg, size, "pcre2_compile() failed: %s in \"%s\"", (char *)text, pattern);
        else
            snprintf(msg, size, "pcre2_compile() failed: %s in \"%s\" at \"%s\"", (char *)text, pattern,
                     pattern + off);
        return NULL;
    }
    /* JIT is an optimisation: without it (no JIT support, no executable memory) matching still works. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    re = malloc(sizeof(*re));
    if (re == NULL) {
        pcre2_code_free(code);
        snprintf(msg, size, "out of memory");
        return NULL;
    }
    re->code = code;
    return re;
}

int gw_regex_match(const gw_regex_t *re, const char *s, size_t len, gw_regex_caps_t *caps)
{
    int rc;

    if (tls_md == NULL) {
        tls_md = pcre2_match_data_create(GW_REGEX_MAX_CAPS, NULL);
        if (tls_md == NULL)
            return -1;
    }
    rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, tls_md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0)
        return -1;
    if (caps) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tls_md);
        uint32_t n = rc == 0 ? GW_REGEX_MAX_CAPS : (uint32_t)rc;

        caps->n = n;
        for (uint32_t i = 0; i < 2 * n; i++)
            caps->ov[i] = ov[i] == PCRE2_UNSET ? UINT32_MAX : (uint32_t)ov[i];
    }
    return 1;
}

void gw_regex_free(gw_regex_t *re)
{
    if (re == NULL)
        return;
    pcre2_code_free(re->code);
    free(re);
}

void gw_regex_thread_exit(void)
{
    pcre2_match_data_free(tls_md);
    tls_md = NULL;
}
