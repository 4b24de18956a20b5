/* Directives of the answers the gateway gives itself (conf_answers.c). */
#ifndef GW_CONF_ANSWERS_H
#define GW_CONF_ANSWERS_H

#include "core/cycle-t.h"
#include "core/module.h"
#include "http-t.h"

extern const gw_module_t gw_answers_module;

/* nginx's defaults at the http level (root "html" in the prefix, large_client_header_buffers 4 8k). 0 or -1. */
int gw_answers_defaults(const gw_cycle_t *cy, gw_http_ans_t *a);

/* A level inherits what it leaves unset (return is never inherited). */
void gw_answers_merge(gw_http_ans_t *child, const gw_http_ans_t *parent);

/* Free what the level owns. */
void gw_answers_free(gw_http_ans_t *a);

#endif
