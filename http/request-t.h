/*
 * One exchange: a client request, the upstream connection carrying it, and
 * the response coming back. Allocated when the first byte of a request
 * arrives and freed when its response is done, so an idle keep-alive
 * connection holds nothing but its slot.
 */
#ifndef GW_REQUEST_T_H
#define GW_REQUEST_T_H

#include <llhttp.h>
#include <stdint.h>

#include "balancer/balancer-t.h"
#include "core/buf-t.h"
#include "core/conn-t.h"
#include "http-t.h"
#include "chunked.h"
#include "message.h"
#include "regex.h"

/* The request side. */
typedef enum gw_rq_state {
    GW_RQ_HEAD, /* reading the request line and headers */
    GW_RQ_BODY, /* head forwarded; streaming the body upstream */
    GW_RQ_DONE, /* the whole request was read */
} gw_rq_state_t;

/* The response side. */
typedef enum gw_rs_state {
    GW_RS_NONE,       /* no upstream yet */
    GW_RS_CONNECTING, /* connect in flight; the head waits in the upstream's queue */
    GW_RS_HEAD,       /* request sent or being sent; reading the response head */
    GW_RS_BODY,       /* response head forwarded; streaming the body to the client */
    GW_RS_DONE,
} gw_rs_state_t;

/* Why a parser stopped (its callbacks return HPE_PAUSED and say why here). */
enum { GW_PAUSE_NONE = 0, GW_PAUSE_HEADERS, GW_PAUSE_DONE };

/*
 * One upstream attempt, for $upstream_* and the per-server metrics (metrics.c).
 * Times in µs from the attempt's start; GW_ATT_NONE when not reached.
 */
#define GW_ATT_NONE UINT32_MAX
#define GW_HTTP_MAX_ATTEMPTS 8 /* later attempts overwrite the last slot */
typedef struct gw_http_attempt {
    const gw_peer_t *peer;
    uint64_t start_us;
    uint32_t connect_us; /* connected (0 for a pooled connection) */
    uint32_t header_us;  /* response head complete */
    uint32_t total_us;   /* attempt over */
    uint16_t status;     /* the upstream's status, or the one its failure maps to (502, 504) */
    uint8_t failed;      /* error, timeout or invalid header */
    uint8_t pooled;      /* on a keepalive connection: no connect */
    uint8_t ended;
} gw_http_attempt_t;

typedef struct gw_http_req {
    gw_worker_t *w;
    gw_conn_t *client;
    gw_conn_t *up; /* NULL before the upstream is chosen and after it is released */
    const gw_http_srv_t *srv;
    const gw_http_loc_t *loc;
    const char *uri;     /* the normalized path locations matched ($uri): into in.buf, or uri_buf */
    char *uri_buf;       /* malloc'ed when normalizing changed the path */
    uint32_t uri_len;
    uint32_t uri_query_len; /* internal_uri: the query ("?..." or empty) stored right after uri */
    gw_regex_caps_t caps;   /* $1..$9 of the regex location that matched: offsets into uri */
    gw_upstream_rt_t *rt;
    const gw_peer_t *peer;

    llhttp_t rq;    /* request parser */
    llhttp_t rs;    /* response parser */
    gw_msg_t in;    /* request target and headers */
    gw_msg_t out;   /* response reason and headers */
    gw_segq_t inq;  /* client bytes received but not parsed yet (pipelining, backpressure) */
    gw_chunked_t chunked;    /* strict check of a chunked body's framing (chunked.c) */
    gw_chunked_t rs_chunked; /* ... and of a chunked response's */
    const char *piece;    /* the bytes being parsed start here (obs-fold check) */
    gw_pick_ctx_t pick; /* balancing state across this request's attempts (tried peers) */
    char key[128];      /* the evaluated `hash` key, when it fits */
    char *key_long;
    uint64_t limit_delay_ms; /* limit_req: wait this long before going on (0: none) */     /* ... or on the heap when it does not (nginx hashes the whole key) */
    uint64_t request_id[2]; /* $request_id, drawn when first used (0, 0: not yet) */

    uint64_t start_us;   /* when the request's first byte arrived (w->now_us) */
    uint64_t body_bytes; /* request body bytes so far (decoded) */
    uint64_t up_mark;    /* req->up's queued - out.bytes when this request was queued on it (proxy.c) */
    uint32_t cur_bid;    /* buffer being parsed: on_body slices point into it */
    uint16_t status;     /* response status, or the error being answered */
    uint16_t err_status; /* set by a parser callback to abort with this status */
    uint16_t ep_status;  /* error_page: the status the proxied answer is given (0: its own) */
    uint8_t rq_state;
    uint8_t rs_state;
    uint8_t pause;       /* GW_PAUSE_*, set by the callback that paused */
    uint8_t host_count;
    uint8_t te_count;
    uint8_t tries;       /* upstream attempts so far (proxy_next_upstream_tries) */
    uint8_t rs_line;     /* where gw_response_check_head is in a response head line (GW_RS_LINE_*) */

    unsigned keepalive : 1;     /* the client connection may carry another request */
    unsigned delayed : 1;       /* limit_req holds it: the client timer ends the wait */
    unsigned expect_100 : 1;
    unsigned is_head : 1;
    unsigned client_eof : 1;    /* the client shut its write side */
    unsigned up_reused : 1;     /* the upstream came from the keepalive pool */
    unsigned up_keepalive : 1;  /* the response lets the upstream be reused */
    unsigned up_leftover : 1;   /* the upstream sent bytes past the response */
    unsigned dechunk : 1;       /* HTTP/1.0 client: chunked body sent decoded */
    unsigned head_sent : 1;     /* the response head was queued to the client */
    unsigned in_1xx : 1;        /* skipping an interim response */
    unsigned client_paused : 1; /* client recv stopped: upstream queue full */
    unsigned up_paused : 1;     /* upstream recv stopped: client queue full */
    unsigned retried : 1;       /* already retried a stale pooled connection */
    unsigned peer_active : 1;   /* req->peer is counted active in the balancer */
    unsigned up_sent : 1;       /* bytes of this request reached the current upstream's socket */
    unsigned rs_started : 1;    /* the upstream sent something for this request */
    unsigned conn_close : 1;    /* the request said Connection: close */
    unsigned head_lf : 1;       /* the head bytes seen so far end with LF (obs-fold check) */
    unsigned in_body : 1;       /* the head is complete: header fields now are trailers */
    unsigned too_many_fields : 1; /* a field past the limit began: 431 once its name is complete */
    unsigned internal_uri : 1;  /* error_page moved the request to uri (+ its query): proxied as that */
    unsigned error_page : 1;    /* an error_page was applied: no second one (nginx's recursive_error_pages off) */
    unsigned up_conn_close : 1; /* the head sent upstream says Connection: close: never pool it */
    unsigned up_upgrade : 1;    /* the head sent upstream carries an Upgrade header */
    unsigned uri_quoted : 1;    /* the client's path had %XX (re-escaped if a URI part replaces a prefix) */
    unsigned upgrade : 1;       /* the request has an Upgrade header: a 101 answer makes a tunnel (tunnel.c) */
    unsigned gz_vary : 1;       /* gzip_vary: the response gets Vary: Accept-Encoding (gzip.c) */
    unsigned flushing : 1;      /* both sides done, the response's end still being sent (gw_exchange_done) */
    struct gw_gzip *gz;         /* the response body is being compressed (gzip.c); NULL: not */

    /* observability (metrics.c, accesslog.c) */
    gw_http_attempt_t att[GW_HTTP_MAX_ATTEMPTS];
    uint8_t natt;
    uint8_t obs_phase;       /* GW_OBS_*: which connection gauge counts this request */
    uint8_t obs_pipe;        /* it arrived behind another one ($pipe) */
    uint64_t request_length; /* bytes of the request read so far, head and body */
    uint64_t out_mark;       /* client->queued when the request began */
    uint64_t body_mark;      /* client->queued once the response head was queued; 0 = not yet */
} gw_http_req_t;

/* Queue limits for backpressure: stop reading a side whose peer has this much unsent. */
enum { GW_RS_LINE_STATUS, GW_RS_LINE_START, GW_RS_LINE_NAME }; /* rs_line: in a value (or status line), at a line's start, in a name */
#define GW_QUEUE_HIGH (256 * 1024)
#define GW_QUEUE_LOW (64 * 1024)
/* ... or this many pieces (gw_queue_high): a piece holds a whole receive
 * buffer however few bytes it carries. By bytes alone, one client that stops
 * reading a stream of 64-byte pieces would hold 4096 buffers: its worker's
 * whole ring. One sendmsg's worth (GW_SEND_MAX_IOV). */
#define GW_QUEUE_HIGH_PIECES 64

#endif
