/*
 * The configuration reader (see conf.h): nginx syntax into a tree with
 * `include` spliced in, the directive-table walk, value parsers, slot setters
 * and the -T dump.
 *
 * Tokenizing follows nginx's ngx_conf_read_token() so a file splits into the
 * same arguments: an unquoted argument ends at whitespace, ';' or '{' (a '}'
 * inside it is kept, as is a '{' right after '$': ${var} works unquoted); a
 * closing quote must be followed by whitespace, ';', '{' or ')'; '#' starts a
 * comment only where an argument could start; \" \' \\ \n \t \r are resolved
 * and any other backslash pair is kept, so regexes like \.php$ survive.
 *
 * Every string and node lives in one arena owned by cf->_arena, so error paths
 * free nothing by hand: gw_conf_free() releases it all.
 */
#include "conf.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"

#define CHUNK_SIZE 16384
#define MAX_INCLUDE_DEPTH 32 /* files nested by include, the main file not counted */
#define MAX_BLOCK_DEPTH 100  /* nested { } blocks; bounds the parser's recursion */
#define CMDLINE "command line"

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    max_align_t data[];
} chunk_t;

typedef struct arena {
    chunk_t *head;
    struct text {
        const char *p;
        size_t len;
    } *texts; /* contents of cf->files[i], kept for gw_conf_dump */
    uint32_t files_cap, texts_cap;
} arena_t;

/*
 * Allocate `size` bytes aligned for any type; NULL when malloc fails. Large
 * requests get a chunk of their own, linked behind the current one so the
 * current one's free tail stays in use.
 */
static void *arena_alloc(arena_t *a, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    size_t cap;
    chunk_t *c;
    bool big;

    if (size > SIZE_MAX / 2)
        return NULL;
    size = size ? (size + align - 1) & ~(align - 1) : align;
    if (a->head && a->head->size - a->head->used >= size) {
        a->head->used += size;
        return (char *)a->head->data + a->head->used - size;
    }
    cap = gw_max(size, (size_t)CHUNK_SIZE);
    if ((c = malloc(sizeof(*c) + cap)) == NULL)
        return NULL;
    c->size = cap;
    c->used = size;
    big = size > CHUNK_SIZE / 4 && a->head;
    c->next = big ? a->head->next : a->head;
    *(big ? &a->head->next : &a->head) = c;
    return c->data;
}

static char *arena_strdup(arena_t *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = arena_alloc(a, n);

    return d ? memcpy(d, s, n) : NULL;
}

/*
 * Make room for one more element in an arena array holding n of `elem` bytes,
 * doubling *cap when full (the outgrown copy is left to the arena). Returns
 * the array, possibly moved, or NULL when out of memory.
 */
static void *arena_grow(arena_t *a, void *v, uint32_t n, uint32_t *cap, size_t elem)
{
    uint32_t ncap = *cap ? *cap * 2 : 8;
    void *nv;

    if (n < *cap)
        return v;
    if ((nv = arena_alloc(a, ncap * elem)) == NULL)
        return NULL;
    if (n)
        memcpy(nv, v, n * elem);
    *cap = ncap;
    return nv;
}

/*
 * Format "message in FILE:LINE" into err. The location is written last and is
 * never truncated away by a long message. Line 0 gives "in FILE"; the -g text
 * gives "in command line" (no line, as nginx); file NULL gives no location.
 */
static void verr(gw_conf_err_t *err, const char *file, uint32_t line, const char *fmt, va_list ap)
{
    char where[512] = "";
    int wl = 0, ml;

    if (err == NULL)
        return;
    if (file && strcmp(file, CMDLINE) == 0)
        wl = snprintf(where, sizeof(where), " in " CMDLINE);
    else if (file)
        wl = snprintf(where, sizeof(where), line ? " in %s:%u" : " in %s", file, line);
    wl = wl < 0 ? 0 : gw_min(wl, (int)sizeof(where) - 1);
    ml = vsnprintf(err->msg, sizeof(err->msg) - (size_t)wl, fmt, ap);
    ml = ml < 0 ? 0 : gw_min(ml, (int)(sizeof(err->msg) - (size_t)wl) - 1);
    memcpy(err->msg + ml, where, (size_t)wl + 1);
}

static int __attribute__((format(printf, 4, 5)))
errat(gw_conf_err_t *err, const char *file, uint32_t line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verr(err, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

int gw_conf_error(gw_conf_err_t *err, const gw_conf_node_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verr(err, n ? n->file : NULL, n ? n->line : 0, fmt, ap);
    va_end(ap);
    return -1;
}

int gw_conf_bit(const gw_conf_node_t *n, uint32_t i, const gw_conf_bit_t *names, size_t count, uint64_t *bit,
                gw_conf_err_t *err)
{
    for (size_t k = 0; k < count; k++)
        if (strcmp(n->args[i], names[k].name) == 0) {
            *bit = names[k].bit;
            return 0;
        }
    return gw_conf_error(err, n, "invalid value \"%s\"", n->args[i]);
}

void gw_conf_log(int level, const gw_conf_node_t *n, const char *fmt, ...)
{
    gw_conf_err_t e;
    va_list ap;

    va_start(ap, fmt);
    verr(&e, n ? n->file : NULL, n ? n->line : 0, fmt, ap);
    va_end(ap);
    gw_log((gw_log_level_t)level, "%s", e.msg);
}

typedef struct lexer {
    const char *p, *end;
    const char *file; /* arena copy, or CMDLINE */
    uint32_t line;    /* the line of the character last read */
    bool param;       /* the -g text: no blocks, nginx's "end of parameter" wording */
} lexer_t;

typedef struct nodevec {
    gw_conf_node_t *v;
    uint32_t n, cap;
} nodevec_t;

typedef struct parser {
    gw_conf_t *cf;
    arena_t *a;
    gw_conf_err_t *err;
    char **args; /* scratch: the directive being read */
    uint32_t nargs, args_cap;
    uint32_t depth; /* include nesting: 0 while reading the main text */
    uint32_t nincl; /* files being read, outermost first: detects include loops */
    struct {
        dev_t dev;
        ino_t ino;
    } incl[MAX_INCLUDE_DEPTH + 1];
} parser_t;

/* What read_directive() stopped at. TOK_ERR is -1 so `return errat(...)` fits. */
enum { TOK_ERR = -1, TOK_SEMI, TOK_BLOCK, TOK_CLOSE, TOK_EOF };

#define lex_error(ps, lx, ...) errat((ps)->err, (lx)->file, (lx)->line, __VA_ARGS__)
#define oom(ps) errat((ps)->err, NULL, 0, "out of memory while reading the configuration")
#define is_space(ch) ((ch) == ' ' || (ch) == '\t' || (ch) == '\r' || (ch) == '\n')

/*
 * Append the argument written in [start, end) to ps->args, resolving nginx's
 * escapes (\" \' \\ drop the backslash; \n \t \r become control characters;
 * any other pair stays as written). Returns 0, or -1 on allocation failure.
 */
static int push_arg(parser_t *ps, const char *start, const char *end)
{
    static const char from[6] = {'"', '\'', '\\', 'n', 't', 'r'}, to[6] = {'"', '\'', '\\', '\n', '\t', '\r'};
    char *word = arena_alloc(ps->a, (size_t)(end - start) + 1), *dst = word;

    if (word == NULL)
        return oom(ps);
    while (start < end) {
        const char *e = *start == '\\' && start + 1 < end ? memchr(from, start[1], sizeof(from)) : NULL;

        *dst++ = e ? to[e - from] : *start;
        start += e ? 2 : 1;
    }
    *dst = '\0';

    /* the scratch is reused by every directive: it grows a few times per load at most */
    if ((ps->args = arena_grow(ps->a, ps->args, ps->nargs, &ps->args_cap, sizeof(char *))) == NULL)
        return oom(ps);
    ps->args[ps->nargs++] = word;
    return 0;
}

/*
 * Read one directive's arguments into ps->args (nginx's ngx_conf_read_token).
 * *name_line gets the line its first argument starts on. Returns TOK_SEMI
 * (ended by ';'), TOK_BLOCK (ended by '{'), TOK_CLOSE (a '}' with no arguments
 * before it), TOK_EOF (input ended between directives) or TOK_ERR (err filled,
 * at the line the offending character is on).
 */
static int read_directive(parser_t *ps, lexer_t *lx, uint32_t *name_line)
{
    const char *start = lx->p;
    bool last_space = true, need_space = false, comment = false, escaped = false, variable = false;
    char quote = 0; /* '"' or '\'' inside a quoted argument */

    ps->nargs = 0;
    *name_line = lx->line;
    for (;;) {
        char ch;

        if (lx->p >= lx->end) {
            if (ps->nargs > 0 || !last_space)
                return lex_error(ps, lx, lx->param ? "unexpected end of parameter, expecting \";\""
                                                   : "unexpected end of file, expecting \";\" or \"}\"");
            return TOK_EOF;
        }
        ch = *lx->p++;
        if (ch == '\n') {
            lx->line++;
            comment = false;
        }
        if (comment)
            continue;
        if (escaped) {
            escaped = false;
            continue;
        }

        if (need_space) { /* right after a closing quote */
            if (is_space(ch)) {
                last_space = true;
                need_space = false;
                continue;
            }
            if (ch == ';' || ch == '{')
                return ch == ';' ? TOK_SEMI : TOK_BLOCK;
            if (ch != ')')
                return lex_error(ps, lx, ch >= 0x20 && ch < 0x7f ? "unexpected \"%c\"" : "unexpected \"\\x%02x\"",
                                 (unsigned char)ch);
            last_space = true; /* `if ($a = "b")`: the ')' starts an argument of its own */
            need_space = false;
        }

        if (last_space) { /* between arguments */
            if (is_space(ch))
                continue;
            start = lx->p - 1;
            if (ps->nargs == 0)
                *name_line = lx->line;
            switch (ch) {
            case ';':
            case '{':
                if (ps->nargs == 0)
                    return lex_error(ps, lx, "unexpected \"%c\"", ch);
                return ch == ';' ? TOK_SEMI : TOK_BLOCK;
            case '}':
                if (ps->nargs != 0)
                    return lex_error(ps, lx, "unexpected \"}\"");
                return TOK_CLOSE;
            case '#':
                comment = true;
                continue;
            case '\\':
                escaped = true;
                break;
            case '"':
            case '\'':
                quote = ch;
                start++;
                break;
            case '$':
                variable = true;
                break;
            }
            last_space = false;
            continue;
        }

        /* inside an argument */
        if (ch == '{' && variable)
            continue;
        variable = ch == '$';
        if (ch == '\\' || ch == '$') {
            escaped = ch == '\\';
            continue;
        }
        if (quote) {
            if (ch != quote)
                continue;
            quote = 0;
            need_space = true;
        } else if (is_space(ch) || ch == ';' || ch == '{') {
            last_space = true;
        } else {
            continue;
        }
        if (push_arg(ps, start, lx->p - 1) < 0)
            return TOK_ERR;
        if (ch == ';' || ch == '{')
            return ch == ';' ? TOK_SEMI : TOK_BLOCK;
    }
}

/*
 * Remember a file read, for -T: its name and contents, once per name (nginx
 * dumps a file included twice only once). Returns 0 or -1 (out of memory).
 */
static int record_file(parser_t *ps, char *name, const char *text, size_t len)
{
    gw_conf_t *cf = ps->cf;
    arena_t *a = ps->a;
    uint32_t n = cf->nfiles;

    for (uint32_t i = 0; i < n; i++)
        if (strcmp(cf->files[i], name) == 0)
            return 0;
    if ((cf->files = arena_grow(a, cf->files, n, &a->files_cap, sizeof(char *))) == NULL ||
        (a->texts = arena_grow(a, a->texts, n, &a->texts_cap, sizeof(struct text))) == NULL)
        return oom(ps);
    cf->files[n] = name;
    a->texts[n] = (struct text){text, len};
    cf->nfiles = n + 1;
    return 0;
}

/*
 * Read all of `path` into the arena (NUL-terminated, *len without the NUL) and
 * stat it into *st. Errors name `from`:`line` (the include), or no location
 * for the main file, in nginx's words: open() "path" failed (2: No such ...).
 */
static int read_file(parser_t *ps, const char *path, const char *from, uint32_t line, char **text, size_t *len,
                     struct stat *st)
{
    size_t cap, n = 0;
    ssize_t r = 0;
    char *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC), e;

    if (fd < 0 || fstat(fd, st) < 0) {
        e = errno;
        if (fd >= 0)
            close(fd);
        return errat(ps->err, from, line, "%s() \"%s\" failed (%d: %s)", fd < 0 ? "open" : "fstat", path, e,
                     strerror(e));
    }
    cap = st->st_size > 0 ? (size_t)st->st_size + 1 : 256;
    for (buf = arena_alloc(ps->a, cap); buf;) {
        if (n + 1 == cap) { /* the file grew, or st_size lied (procfs): double */
            char *nb = arena_alloc(ps->a, cap *= 2);

            if (nb)
                memcpy(nb, buf, n);
            buf = nb;
            continue;
        }
        r = read(fd, buf + n, cap - 1 - n);
        if (r > 0)
            n += (size_t)r;
        else if (r == 0 || errno != EINTR)
            break;
    }
    e = errno;
    close(fd);
    if (buf == NULL)
        return oom(ps);
    if (r < 0)
        return errat(ps->err, from, line, "read() \"%s\" failed (%d: %s)", path, e, strerror(e));
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

static int parse_items(parser_t *ps, lexer_t *lx, nodevec_t *out, bool in_block, unsigned depth);

/*
 * Read one file, named by an include at from:line, and splice its directives
 * into `out`. A file may not include itself, directly or not, and includes nest
 * at most MAX_INCLUDE_DEPTH deep. Returns 0 or -1 with err filled.
 */
static int include_file(parser_t *ps, const char *path, const char *from, uint32_t line, nodevec_t *out,
                        unsigned depth)
{
    struct stat st;
    char *name, *text;
    size_t len;
    lexer_t lx;
    int rc;

    if (ps->depth >= MAX_INCLUDE_DEPTH)
        return errat(ps->err, from, line, "too deep include nesting (more than %d levels) at \"%s\"",
                     MAX_INCLUDE_DEPTH, path);
    if ((name = arena_strdup(ps->a, path)) == NULL)
        return oom(ps);
    if (read_file(ps, name, from, line, &text, &len, &st) < 0)
        return -1;
    for (uint32_t i = 0; i < ps->nincl; i++)
        if (ps->incl[i].dev == st.st_dev && ps->incl[i].ino == st.st_ino)
            return errat(ps->err, from, line, "recursive include of \"%s\"", name);
    if (record_file(ps, name, text, len) < 0)
        return -1;

    ps->incl[ps->nincl].dev = st.st_dev;
    ps->incl[ps->nincl].ino = st.st_ino;
    ps->nincl++;
    ps->depth++;
    lx = (lexer_t){.p = text, .end = text + len, .file = name, .line = 1};
    rc = parse_items(ps, &lx, out, false, depth);
    ps->depth--;
    ps->nincl--;
    return rc;
}

/*
 * `include PATTERN;` (in ps->args, from lx->file:line): resolve PATTERN against
 * conf_prefix unless absolute, then read the one file it names or, when it has
 * a wildcard, every match in sorted order (no match is fine), as nginx does.
 */
static int handle_include(parser_t *ps, const lexer_t *lx, uint32_t line, bool is_block, nodevec_t *out,
                          unsigned depth)
{
    const char *pattern, *prefix = ps->cf->conf_prefix;
    size_t plen = strlen(prefix);
    char *path;
    glob_t g;
    int rc;

    if (is_block)
        return errat(ps->err, lx->file, line, "unexpected \"{\"");
    if (ps->nargs != 2)
        return errat(ps->err, lx->file, line, "invalid number of arguments in \"include\" directive");
    pattern = ps->args[1]; /* an arena string: survives the scratch being reused below */
    if (pattern[0] == '/') {
        path = (char *)pattern;
    } else {
        if ((path = arena_alloc(ps->a, plen + strlen(pattern) + 1)) == NULL)
            return oom(ps);
        memcpy(path, prefix, plen);
        strcpy(path + plen, pattern);
    }
    if (strpbrk(path, "*?[") == NULL)
        return include_file(ps, path, lx->file, line, out, depth);

    memset(&g, 0, sizeof(g));
    rc = glob(path, 0, NULL, &g);
    if (rc != 0 && rc != GLOB_NOMATCH) {
        globfree(&g);
        return errat(ps->err, lx->file, line, "glob() \"%s\" failed", path);
    }
    rc = 0;
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
        rc = include_file(ps, g.gl_pathv[i], lx->file, line, out, depth);
    globfree(&g);
    return rc;
}

/*
 * Parse directives from lx into `out` until the end of the input (in_block
 * false: a file or the -g text, where a '}' is an error) or until the '}' that
 * closes the current block (in_block true, where the end of input is an
 * error). Blocks recurse with depth + 1. Returns 0 or -1 with err filled.
 */
static int parse_items(parser_t *ps, lexer_t *lx, nodevec_t *out, bool in_block, unsigned depth)
{
    for (;;) {
        gw_conf_node_t node = {0};
        nodevec_t kids = {0};
        uint32_t line;
        int rc = read_directive(ps, lx, &line);

        if (rc == TOK_ERR)
            return -1;
        if (rc == TOK_CLOSE)
            return in_block ? 0 : lex_error(ps, lx, "unexpected \"}\"");
        if (rc == TOK_EOF)
            return in_block ? lex_error(ps, lx, "unexpected end of file, expecting \"}\"") : 0;
        if (rc == TOK_BLOCK && lx->param)
            return lex_error(ps, lx, "block directives are not supported in -g option");
        if (strcmp(ps->args[0], "include") == 0) {
            if (handle_include(ps, lx, line, rc == TOK_BLOCK, out, depth) < 0)
                return -1;
            continue;
        }

        node.file = lx->file;
        node.line = line;
        node.nargs = ps->nargs;
        node.is_block = rc == TOK_BLOCK;
        if ((node.args = arena_alloc(ps->a, (ps->nargs + 1) * sizeof(char *))) == NULL)
            return oom(ps);
        memcpy(node.args, ps->args, ps->nargs * sizeof(char *));
        node.args[ps->nargs] = NULL;
        if (node.is_block) {
            if (depth >= MAX_BLOCK_DEPTH)
                return lex_error(ps, lx, "too deep block nesting (more than %d levels)", MAX_BLOCK_DEPTH);
            if (parse_items(ps, lx, &kids, true, depth + 1) < 0)
                return -1;
            node.children = kids.v;
            node.nchildren = kids.n;
        }

        if ((out->v = arena_grow(ps->a, out->v, out->n, &out->cap, sizeof(node))) == NULL)
            return oom(ps);
        out->v[out->n++] = node;
    }
}

/*
 * Load a configuration: the main text is `text` when given, else the file
 * `main` is read. conf_prefix is `prefix` with a trailing '/' added or, when
 * NULL or empty, the directory of `main` ("./" if it has none). The -g text
 * `extra` is parsed first so its directives come first. On failure
 * everything is freed and cf is left zeroed.
 */
static int load(gw_conf_t *cf, const char *main, const char *text, const char *prefix, const char *extra,
                gw_conf_err_t *err)
{
    const char *slash = strrchr(main, '/'), *dir = prefix && prefix[0] ? prefix : slash ? main : "./";
    size_t plen = prefix && prefix[0] ? strlen(prefix) : slash ? (size_t)(slash - main) + 1 : 2;
    parser_t ps = {.cf = cf, .err = err};
    nodevec_t root = {0};
    lexer_t lx;
    struct stat st;
    char *name, *body;
    size_t len;

    memset(cf, 0, sizeof(*cf));
    if ((ps.a = cf->_arena = calloc(1, sizeof(arena_t))) == NULL || (name = arena_strdup(ps.a, main)) == NULL ||
        (cf->conf_prefix = arena_alloc(ps.a, plen + 2)) == NULL)
        goto oom;
    memcpy(cf->conf_prefix, dir, plen);
    if (cf->conf_prefix[plen - 1] != '/')
        cf->conf_prefix[plen++] = '/';
    cf->conf_prefix[plen] = '\0';

    if (text) {
        if ((body = arena_strdup(ps.a, text)) == NULL)
            goto oom;
        len = strlen(body);
    } else if (read_file(&ps, name, NULL, 0, &body, &len, &st) < 0) {
        goto fail;
    } else {
        ps.incl[0].dev = st.st_dev;
        ps.incl[0].ino = st.st_ino;
        ps.nincl = 1;
    }
    if (record_file(&ps, name, body, len) < 0)
        goto fail;
    if (extra) {
        lx = (lexer_t){.p = extra, .end = extra + strlen(extra), .file = CMDLINE, .line = 1, .param = true};
        if (parse_items(&ps, &lx, &root, false, 0) < 0)
            goto fail;
    }
    lx = (lexer_t){.p = body, .end = body + len, .file = name, .line = 1};
    if (parse_items(&ps, &lx, &root, false, 0) < 0)
        goto fail;
    if ((cf->root.args = arena_alloc(ps.a, sizeof(char *))) == NULL)
        goto oom;
    cf->root.args[0] = NULL; /* the implicit main block has no name: nargs 0 */
    cf->root.is_block = true;
    cf->root.children = root.v;
    cf->root.nchildren = root.n;
    cf->root.file = name;
    return 0;
oom:
    oom(&ps);
fail:
    gw_conf_free(cf);
    return -1;
}

int gw_conf_load(gw_conf_t *cf, const char *path, const char *extra, gw_conf_err_t *err)
{
    return load(cf, path, NULL, NULL, extra, err);
}

int gw_conf_load_string(gw_conf_t *cf, const char *name, const char *text, const char *conf_prefix,
                        gw_conf_err_t *err)
{
    return load(cf, name ? name : "-", text ? text : "", conf_prefix, NULL, err);
}

void gw_conf_free(gw_conf_t *cf)
{
    arena_t *a;

    if (cf == NULL)
        return;
    if ((a = cf->_arena) != NULL) {
        for (chunk_t *c = a->head, *next; c; c = next) {
            next = c->next;
            free(c);
        }
        free(a);
    }
    memset(cf, 0, sizeof(*cf));
}

/*
 * Does a directive with nargs (the name included) fit cmd->args? Same order as
 * nginx: FLAG, then 1MORE, then 2MORE, then the fixed NOARGS/TAKEn bits.
 */
static bool nargs_ok(const gw_conf_cmd_t *cmd, uint32_t nargs)
{
    uint32_t k = nargs - 1; /* arguments after the name */

    if (cmd->args & GW_CONF_FLAG)
        return k == 1;
    if (cmd->args & GW_CONF_1MORE)
        return k >= 1;
    if (cmd->args & GW_CONF_2MORE)
        return k >= 2;
    return k <= 7 && (cmd->args & (GW_CONF_NOARGS << k)); /* NOARGS, TAKE1..TAKE7 are consecutive bits */
}

/* "on" 1, "off" 0 (any case, as nginx), else -1 with err filled. */
static int flag_value(const gw_conf_node_t *n, gw_conf_err_t *err)
{
    if (strcasecmp(n->args[1], "on") == 0 || strcasecmp(n->args[1], "off") == 0)
        return strcasecmp(n->args[1], "on") == 0;
    return gw_conf_error(err, n, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                         n->args[1], n->args[0]);
}

/* Apply one node: find its command, check context and shape, call the setter. */
static int apply_one(const gw_conf_node_t *n, uint32_t ctx, const gw_conf_cmd_table_t *tables, void *conf,
                     void *user, gw_conf_err_t *err)
{
    const char *name = n->nargs ? n->args[0] : "";
    bool found = false;

    for (size_t t = 0; tables && tables[t]; t++) {
        for (const gw_conf_cmd_t *cmd = tables[t]; cmd->name; cmd++) {
            if (strcmp(cmd->name, name) != 0)
                continue;
            found = true;
            if (!(cmd->contexts & ctx))
                continue;
            if ((cmd->args & GW_CONF_BLOCK) && !n->is_block)
                return gw_conf_error(err, n, "directive \"%s\" has no opening \"{\"", name);
            if (!(cmd->args & GW_CONF_BLOCK) && n->is_block)
                return gw_conf_error(err, n, "unexpected \"{\"");
            if (!nargs_ok(cmd, n->nargs))
                return gw_conf_error(err, n, "invalid number of arguments in \"%s\" directive", name);
            if ((cmd->args & GW_CONF_FLAG) && flag_value(n, err) < 0)
                return -1;
            return cmd->set && cmd->set(n, cmd, conf, user, err) != 0 ? -1 : 0;
        }
    }
    if (found)
        return gw_conf_error(err, n, "\"%s\" directive is not allowed here", name);
    return gw_conf_error(err, n, "unknown directive \"%s\"", name);
}

int gw_conf_apply(const gw_conf_node_t *nodes, uint32_t n, uint32_t ctx, const gw_conf_cmd_table_t *tables,
                  void *conf, void *user, gw_conf_err_t *err)
{
    for (uint32_t i = 0; i < n; i++)
        if (apply_one(&nodes[i], ctx, tables, conf, user, err) < 0)
            return -1;
    return 0;
}

/* Parse the decimal digits in [s, end) into *out: no sign, not empty, at most `max`. */
static int parse_digits(const char *s, const char *end, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == end)
        return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int gw_conf_parse_uint(const char *s, uint64_t *out)
{
    return parse_digits(s, s + strlen(s), UINT64_MAX, out);
}

int gw_conf_parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "kKmMgG";
    size_t len = strlen(s);
    const char *unit = len ? strchr(units, s[len - 1]) : NULL;
    uint64_t scale = unit ? 1ULL << (10 * (1 + (unit - units) / 2)) : 1, v;

    if (len == 0 || parse_digits(s, s + len - (scale > 1), UINT64_MAX / scale, &v) < 0)
        return -1;
    *out = v * scale;
    return 0;
}

/*
 * nginx's ngx_parse_time, in milliseconds: number+unit groups in strictly
 * decreasing unit order (y M w d h m s ms), spaces allowed after a unit; a
 * trailing bare number counts as seconds. Unlike nginx, each unit needs a
 * number before it ("1hm" is refused), a bare number may not follow s or ms,
 * and y/M are accepted (conf.h). Results are capped at INT64_MAX.
 */
int gw_conf_parse_msec(const char *s, uint64_t *out)
{
    static const struct {
        char unit[3];
        int rank; /* the order units must come in */
        uint64_t ms;
    } units[] = {
        {"y", 0, 365ULL * 86400000}, {"M", 1, 30ULL * 86400000}, {"w", 2, 7ULL * 86400000},
        {"d", 3, 86400000},          {"h", 4, 3600000},          {"ms", 7, 1},
        {"m", 5, 60000},             {"s", 6, 1000},
    };
    const uint64_t max = INT64_MAX;
    uint64_t total = 0, v, ms;
    int last = -1;
    size_t u;

    if (*s == '\0')
        return -1;
    while (*s) {
        const char *d = s;

        while (*s >= '0' && *s <= '9')
            s++;
        if (parse_digits(d, s, max, &v) < 0)
            return -1;
        for (u = 0; u < GW_ARRAY_SIZE(units); u++)
            if (strncmp(s, units[u].unit, strlen(units[u].unit)) == 0)
                break;
        if (*s == '\0' || *s == ' ') { /* bare number: seconds, only at the end */
            while (*s == ' ')
                s++;
            if (*s != '\0' || last >= 6)
                return -1;
            ms = 1000;
        } else if (u == GW_ARRAY_SIZE(units) || units[u].rank <= last) {
            return -1;
        } else {
            ms = units[u].ms;
            last = units[u].rank;
            s += strlen(units[u].unit);
            while (*s == ' ')
                s++;
        }
        if (v > max / ms || total > max - v * ms)
            return -1;
        total += v * ms;
    }
    *out = total;
    return 0;
}

#define SLOT(type) ((type *)(void *)((char *)conf + cmd->offset))

/* Common start of the slot setters: one value, and not set before in this block. */
static int slot_check(const gw_conf_node_t *n, bool set, gw_conf_err_t *err)
{
    if (n->nargs < 2)
        return gw_conf_error(err, n, "invalid number of arguments in \"%s\" directive", n->args[0]);
    if (set)
        return gw_conf_error(err, n, "\"%s\" directive is duplicate", n->args[0]);
    return 0;
}

int gw_conf_set_flag_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    int *p = SLOT(int), v;

    (void)user;
    if (slot_check(n, *p != GW_CONF_UNSET_INT, err) < 0 || (v = flag_value(n, err)) < 0)
        return -1;
    *p = v;
    return 0;
}

/* The uint64_t setters differ only in the parser and in nginx's complaint. */
static int set_u64(const gw_conf_node_t *n, uint64_t *p, int (*parse)(const char *, uint64_t *),
                   const char *complaint, gw_conf_err_t *err)
{
    uint64_t v;

    if (slot_check(n, *p != GW_CONF_UNSET_U64, err) < 0)
        return -1;
    if (parse(n->args[1], &v) < 0 || v == GW_CONF_UNSET_U64) /* the marker itself is no value */
        return gw_conf_error(err, n, "\"%s\" directive %s", n->args[0], complaint);
    *p = v;
    return 0;
}

int gw_conf_set_uint_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    (void)user;
    return set_u64(n, SLOT(uint64_t), gw_conf_parse_uint, "invalid number", err);
}

int gw_conf_set_size_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    (void)user;
    return set_u64(n, SLOT(uint64_t), gw_conf_parse_size, "invalid value", err);
}

int gw_conf_set_msec_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                          gw_conf_err_t *err)
{
    (void)user;
    return set_u64(n, SLOT(uint64_t), gw_conf_parse_msec, "invalid value", err);
}

int gw_conf_set_str_slot(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user,
                         gw_conf_err_t *err)
{
    char **p = SLOT(char *);

    (void)user;
    if (slot_check(n, *p != NULL, err) < 0)
        return -1;
    if ((*p = strdup(n->args[1])) == NULL)
        return gw_conf_error(err, n, "out of memory");
    return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int gw_conf_dump(const gw_conf_t *cf, int fd)
{
    const arena_t *a = cf->_arena;
    int rc = 0;

    for (uint32_t i = 0; i < cf->nfiles && rc == 0; i++) {
        /* not dprintf(): glibc's leaks its stdio buffer when the write fails */
        const char *part[] = {"# configuration file ", cf->files[i], ":\n", a->texts[i].p, "\n"};
        size_t len[] = {21, strlen(cf->files[i]), 2, a->texts[i].len, 1};

        for (size_t k = 0; k < GW_ARRAY_SIZE(part) && rc == 0; k++)
            rc = write_all(fd, part[k], len[k]);
    }
    return rc;
}
