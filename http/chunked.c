/*
 * Why a second chunked parser: a chunked request body is forwarded upstream
 * as received, framing included, and llhttp decides where it ends. llhttp 8
 * is lenient in places (it ends a body on "0\r\n\r\r", for one), and the
 * backend behind us may read the same bytes differently: where two parsers
 * disagree on a message's end, requests can be smuggled. So every byte we
 * forward is also checked against the grammar itself, and http/request.c
 * refuses the request unless both agree on where it ends.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] )
 *
 * Extensions are checked loosely (no control characters but HT, bounded
 * length): their inside never moves a boundary, CR and LF do.
 */
#include "chunked.h"

#include <string.h>

enum {
    S_SIZE0,     /* the first hex digit of a chunk size */
    S_SIZE,      /* more digits, BWS, ';' or CR */
    S_SIZE_WS,   /* BWS after the size: only ';' may follow */
    S_EXT,       /* inside chunk extensions, until CR */
    S_SIZE_LF,   /* LF after the size line */
    S_DATA,      /* chunk data */
    S_DATA_CR,   /* CR after the data */
    S_DATA_LF,   /* LF after the data */
    S_TRAILER,   /* the start of a trailer line (or the final CRLF) */
    S_TR_NAME,   /* a trailer field name, until ':' */
    S_TR_VALUE,  /* its value, until CR */
    S_TR_LF,     /* LF after a trailer line */
    S_END_LF,    /* LF of the final CRLF */
    S_DONE,
};

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Field or extension text: VCHAR, obs-text, SP, HT. */
static int text(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static int bad(gw_chunked_t *c, uint32_t i)
{
    c->bad = i;
    return GW_CHUNKED_BAD;
}

int gw_chunked_scan(gw_chunked_t *c, const char *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        int h;

        switch (c->state) {
        case S_SIZE0:
            if ((h = hexval(ch)) < 0)
                return bad(c, i);
            c->left = (uint64_t)h;
            c->state = S_SIZE;
            break;
        case S_SIZE:
            if ((h = hexval(ch)) >= 0) {
                if (c->left >> 59)
                    return bad(c, i); /* would pass 2^63 */
                c->left = c->left * 16 + (uint64_t)h;
            } else if (ch == ' ' || ch == '\t') {
                c->state = S_SIZE_WS;
            } else if (ch == ';') {
                c->state = S_EXT;
                c->run = 0;
            } else if (ch == '\r') {
                c->state = S_SIZE_LF;
            } else {
                return bad(c, i);
            }
            break;
        case S_SIZE_WS:
            if (ch == ';') {
                c->state = S_EXT;
                c->run = 0;
            } else if (ch != ' ' && ch != '\t') {
                return bad(c, i);
            }
            break;
        case S_EXT:
            if (ch == '\r')
                c->state = S_SIZE_LF;
            else if (!text(ch) || ++c->run > GW_CHUNKED_MAX_LINE)
                return bad(c, i);
            break;
        case S_SIZE_LF:
            if (ch != '\n')
                return bad(c, i);
            c->state = c->left ? S_DATA : S_TRAILER;
            break;
        case S_DATA: {
            uint64_t take = n - i < c->left ? n - i : c->left;

            c->left -= take;
            i += (uint32_t)take - 1;
            if (c->left == 0)
                c->state = S_DATA_CR;
            break;
        }
        case S_DATA_CR:
            if (ch != '\r')
                return bad(c, i); /* chunk data longer than declared */
            c->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (ch != '\n')
                return bad(c, i);
            c->state = S_SIZE0;
            break;
        case S_TRAILER:
            if (ch == '\r') {
                c->state = S_END_LF;
            } else if (tchar(ch)) {
                c->state = S_TR_NAME;
                c->run = 1;
            } else {
                return bad(c, i);
            }
            break;
        case S_TR_NAME:
            if (ch == ':')
                c->state = S_TR_VALUE;
            else if (!tchar(ch) || ++c->run > GW_CHUNKED_MAX_LINE)
                return bad(c, i);
            break;
        case S_TR_VALUE:
            if (ch == '\r')
                c->state = S_TR_LF;
            else if (!text(ch) || ++c->run > GW_CHUNKED_MAX_LINE)
                return bad(c, i);
            break;
        case S_TR_LF:
            if (ch != '\n')
                return bad(c, i);
            c->state = S_TRAILER;
            break;
        case S_END_LF:
            if (ch != '\n')
                return bad(c, i);
            c->state = S_DONE;
            return (int)(i + 1);
        default: /* S_DONE: nothing may follow within this body */
            return bad(c, i);
        }
    }
    return GW_CHUNKED_MORE;
}
