#include "errors.h"

#include <stdio.h>
#include <stdlib.h>

const char *gw_http_reason(unsigned status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Not Allowed";
    case 408: return "Request Time-out";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Temporarily Unavailable";
    case 504: return "Gateway Time-out";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

char *gw_http_error_response(unsigned status, int keepalive, int head_only, uint32_t *len)
{
    const char *reason = gw_http_reason(status);
    char body[512];
    char *out;
    int blen, n;

    blen = snprintf(body, sizeof(body),
                    "<html>\r\n<head><title>%u %s</title></head>\r\n<body>\r\n<center><h1>%u %s</h1></center>\r\n"
                    "<hr><center>gateway</center>\r\n</body>\r\n</html>\r\n",
                    status, reason, status, reason);
    n = asprintf(&out,
                 "HTTP/1.1 %u %s\r\nServer: gateway\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                 "Connection: %s\r\n\r\n%s",
                 status, reason, blen, keepalive ? "keep-alive" : "close", head_only ? "" : body);
    if (n < 0)
        return NULL;
    *len = (uint32_t)n;
    return out;
}
