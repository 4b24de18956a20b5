#include "message.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { PHASE_NONE = 0, PHASE_NAME, PHASE_VALUE };

void gw_msg_reset(gw_msg_t *m)
{
    m->len = 0;
    m->n = 0;
    m->line_len = 0;
    m->phase = PHASE_NONE;
}

void gw_msg_free(gw_msg_t *m)
{
    free(m->buf);
    free(m->h);
    memset(m, 0, sizeof(*m));
}

static uint32_t max_line(const gw_msg_t *m)
{
    return m->max_line ? m->max_line : GW_MSG_MAX_LINE;
}

static int append(gw_msg_t *m, const char *p, size_t n)
{
    if (n == 0)
        return GW_MSG_OK;
    if (m->len + n > (m->max_total ? m->max_total : GW_MSG_MAX_TOTAL))
        return GW_MSG_TOO_LARGE;
    if (m->len + n > m->cap) {
        uint32_t cap = m->cap ? m->cap : 1024;
        char *grown;

        while (cap < m->len + n)
            cap *= 2;
        grown = realloc(m->buf, cap);
        if (grown == NULL)
            return GW_MSG_NOMEM;
        m->buf = grown;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, p, n);
    m->len += (uint32_t)n;
    return GW_MSG_OK;
}

int gw_msg_line(gw_msg_t *m, const char *p, size_t n)
{
    if (m->len + n > max_line(m))
        return GW_MSG_TOO_LONG_LINE;
    return append(m, p, n);
}

void gw_msg_line_done(gw_msg_t *m)
{
    m->line_len = m->len;
}

int gw_msg_field(gw_msg_t *m, const char *p, size_t n)
{
    gw_hdr_t *h;

    if (m->phase != PHASE_NAME) {
        if (m->n == GW_MSG_MAX_HEADERS)
            return GW_MSG_TOO_LARGE;
        if (m->n == m->hcap) {
            uint32_t cap = m->hcap ? m->hcap * 2 : 16;
            gw_hdr_t *grown = realloc(m->h, cap * sizeof(*grown));

            if (grown == NULL)
                return GW_MSG_NOMEM;
            m->h = grown;
            m->hcap = cap;
        }
        h = &m->h[m->n++];
        memset(h, 0, sizeof(*h));
        h->name = m->len;
        m->phase = PHASE_NAME;
    }
    h = gw_msg_last(m);
    if (m->len - h->name + n > max_line(m))
        return GW_MSG_TOO_LONG_LINE;
    return append(m, p, n);
}

static uint8_t classify(const char *name, uint32_t len)
{
    static const struct {
        const char *name;
        uint8_t len, id;
    } known[] = {
        {"host", 4, GW_H_HOST},
        {"connection", 10, GW_H_CONNECTION},
        {"keep-alive", 10, GW_H_KEEP_ALIVE},
        {"proxy-connection", 16, GW_H_PROXY_CONNECTION},
        {"te", 2, GW_H_TE},
        {"trailer", 7, GW_H_TRAILER},
        {"transfer-encoding", 17, GW_H_TRANSFER_ENCODING},
        {"upgrade", 7, GW_H_UPGRADE},
        {"content-length", 14, GW_H_CONTENT_LENGTH},
        {"expect", 6, GW_H_EXPECT},
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i].len == len && strncasecmp(known[i].name, name, len) == 0)
            return known[i].id;
    return GW_H_OTHER;
}

int gw_msg_field_done(gw_msg_t *m)
{
    gw_hdr_t *h = gw_msg_last(m);

    h->name_len = m->len - h->name;
    h->value = m->len; /* a value may be empty: llhttp then calls no on_header_value */
    /* an empty first name leaves buf unallocated: no arithmetic on NULL */
    h->id = classify(m->buf ? m->buf + h->name : "", h->name_len);
    h->hash = gw_hdr_hash(m->buf ? m->buf + h->name : "", h->name_len);
    h->flags = 0;
    for (uint32_t i = 0; i < h->name_len; i++) {
        unsigned char c = (unsigned char)m->buf[h->name + i];

        if (c == '_')
            h->flags |= GW_HF_UNDERSCORE;
        else if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && !(c >= '0' && c <= '9') && c != '-')
            h->flags |= GW_HF_INVALID;
    }
    m->phase = PHASE_VALUE;
    return GW_MSG_OK;
}

int gw_msg_value(gw_msg_t *m, const char *p, size_t n)
{
    gw_hdr_t *h = gw_msg_last(m);

    if (m->len - h->name + n > max_line(m))
        return GW_MSG_TOO_LONG_LINE;
    return append(m, p, n);
}

int gw_msg_value_done(gw_msg_t *m)
{
    gw_hdr_t *h = gw_msg_last(m);

    h->value_len = m->len - h->value;
    while (h->value_len && (m->buf[h->value + h->value_len - 1] == ' ' || m->buf[h->value + h->value_len - 1] == '\t'))
        h->value_len--;
    m->phase = PHASE_NONE;
    return GW_MSG_OK;
}

int gw_token_list_has(const char *value, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;

    while (i < len) {
        size_t start, end;

        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        start = i;
        while (i < len && value[i] != ',')
            i++;
        end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(value + start, token, tlen) == 0)
            return 1;
    }
    return 0;
}
