/*
 * Answers of our own in nginx's shape. The status lines and the page titles
 * are nginx's (they differ for 302: "Moved Temporarily" in the status line,
 * "302 Found" on the page), so a client or a test comparing the two sees
 * the same thing, except the server's name at the bottom of the page.
 */
#include "errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gw_http_reason(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Moved Temporarily";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Time-out";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Requested Range Not Satisfiable";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Temporarily Unavailable";
    case 504: return "Gateway Time-out";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "";
    }
}

/* The title of nginx's built-in page for status, NULL when it has no page. */
static const char *page_title(unsigned status)
{
    switch (status) {
    case 302: return "Found";
    case 401: return "Authorization Required";
    case 200: case 201: case 202: case 204: case 206: case 304:
        return NULL;
    default: {
        const char *r = gw_http_reason(status);

        return r[0] ? r : NULL;
    }
    }
}

char *gw_http_answer(const gw_answer_t *a, uint32_t *len)
{
    /* 1xx, 204 and 304 have neither a body nor a length (RFC 9110 8.6). */
    int bodiless = a->status < 200 || a->status == 204 || a->status == 304;
    const char *reason = gw_http_reason(a->status);
    size_t need = sizeof("HTTP/1.1 000 \r\n") + strlen(reason) + a->top_len + sizeof("Server: gateway\r\n") +
                  sizeof("Content-Type: \r\n") + (a->ctype ? strlen(a->ctype) : 0) +
                  sizeof("Content-Length: 18446744073709551615\r\n") + sizeof("Location: \r\n") + a->location_len +
                  sizeof("Connection: keep-alive\r\n") + a->extra_len + a->added_len + 2 + (a->head_only ? 0 : a->body_len);
    char *out = malloc(need), *p;

    if (out == NULL)
        return NULL;
    p = out + sprintf(out, "HTTP/1.1 %03u %s\r\n", a->status, reason);
    if (a->top) {
        memcpy(p, a->top, a->top_len);
        p += a->top_len;
    } else {
        p += sprintf(p, "Server: gateway\r\n");
    }
    if (a->ctype)
        p += sprintf(p, "Content-Type: %s\r\n", a->ctype);
    if (!bodiless)
        p += sprintf(p, "Content-Length: %zu\r\n", a->body_len);
    if (a->extra_len) {
        memcpy(p, a->extra, a->extra_len);
        p += a->extra_len;
    }
    if (a->location) {
        p += sprintf(p, "Location: ");
        memcpy(p, a->location, a->location_len);
        p += a->location_len;
        p += sprintf(p, "\r\n");
    }
    p += sprintf(p, "Connection: %s\r\n", a->keepalive ? "keep-alive" : "close");
    if (a->added_len) {
        memcpy(p, a->added, a->added_len);
        p += a->added_len;
    }
    p += sprintf(p, "\r\n");
    if (!a->head_only && !bodiless && a->body_len) {
        memcpy(p, a->body, a->body_len);
        p += a->body_len;
    }
    *len = (uint32_t)(p - out);
    return out;
}

char *gw_http_special_response(gw_answer_t *a, uint32_t *len)
{
    const char *title = page_title(a->status);
    char body[512];

    a->body = NULL;
    a->body_len = 0;
    a->ctype = NULL;
    if (title) {
        int n = snprintf(body, sizeof(body),
                         "<html>\r\n<head><title>%u %s</title></head>\r\n<body>\r\n<center><h1>%u %s</h1></center>\r\n"
                         "<hr><center>%.64s</center>\r\n</body>\r\n</html>\r\n",
                         a->status, title, a->status, title, a->sig ? a->sig : "gateway");

        a->ctype = "text/html";
        a->body = body;
        a->body_len = (size_t)n;
    } else if (a->status < 300 && a->status != 204) {
        a->ctype = "text/plain"; /* nginx's default_type, on an empty body */
    }
    return gw_http_answer(a, len);
}
