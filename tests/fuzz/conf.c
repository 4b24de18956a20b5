/*
 * Fuzz target: loading a configuration as `gateway -t` does
 * (gw_cycle_load: core/conf.c's lexer and include splicing, every module's
 * directive handlers, init_cycle's checks), from a file written into an
 * empty directory that is also the prefix. A load either succeeds or fails
 * with a message naming "in FILE:LINE" (or the command line); then the
 * cycle is freed, and ASan's leak check covers every error path.
 *
 * Two things the real binary does are kept out of the fuzzer's reach:
 * name resolution (a host name in proxy_pass or server would ask DNS; here
 * only numeric addresses and "localhost" resolve), and reading files outside
 * the directory (an include of /dev/zero never ends): inputs naming
 * absolute or parent paths in an include, or device, proc or sys paths, are
 * skipped.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cycle.h"
#include "core/gw.h"
#include "tests/fuzz/fuzz.h"

/* ---- a resolver that never leaves the process ---- */

typedef struct fake_ai {
    struct addrinfo ai;
    struct sockaddr_storage ss;
} fake_ai_t;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    fake_ai_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return EAI_MEMORY;
    if (node && strcmp(node, "localhost") == 0)
        node = "127.0.0.1";
    if (node && inet_pton(AF_INET, node, &((struct sockaddr_in *)&f->ss)->sin_addr) == 1) {
        f->ss.ss_family = AF_INET;
        f->ai.ai_addrlen = sizeof(struct sockaddr_in);
    } else if (node && inet_pton(AF_INET6, node, &((struct sockaddr_in6 *)&f->ss)->sin6_addr) == 1) {
        f->ss.ss_family = AF_INET6;
        f->ai.ai_addrlen = sizeof(struct sockaddr_in6);
    } else {
        free(f);
        return EAI_NONAME;
    }
    f->ai.ai_family = f->ss.ss_family;
    f->ai.ai_socktype = SOCK_STREAM;
    f->ai.ai_addr = (struct sockaddr *)&f->ss;
    *res = &f->ai;
    return 0;
}

void freeaddrinfo(struct addrinfo *res)
{
    free(res); /* the fake_ai_t it starts */
}

/* ---- the target ---- */

static char dir[64], path[96];

static int has(const uint8_t *data, size_t size, const char *s)
{
    return memmem(data, size, s, strlen(s)) != NULL;
}

static int reaches_outside(const uint8_t *data, size_t size)
{
    if (has(data, size, "dev/") || has(data, size, "proc/") || has(data, size, "sys/"))
        return 1;
    return has(data, size, "include") && (has(data, size, "/") || has(data, size, ".."));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char prefix[100];
    gw_conf_err_t err;
    gw_cycle_t cy;
    FILE *f;
    int r;

    if (reaches_outside(data, size))
        return 0;
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/gw-fuzz-conf.%d", (int)getpid());
        mkdir(dir, 0700);
        snprintf(path, sizeof(path), "%s/gateway.conf", dir);
    }
    f = fopen(path, "w");
    FUZZ_ASSERT(f != NULL);
    fwrite(data, 1, size, f); /* the bytes as given: NULs and all */
    fclose(f);
    memset(&err, 0, sizeof(err));
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    r = gw_cycle_load(&cy, prefix, path, NULL, NULL, &err);
    if (r < 0) {
        FUZZ_ASSERT(err.msg[0] != '\0');
    }
    gw_cycle_free(&cy);
    return 0;
}
