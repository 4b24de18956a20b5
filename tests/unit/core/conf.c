/*
 * Tests for core/conf.c: the tokenizer against nginx's rules, include and -g,
 * every error message with its file:line, the directive-table walk, the value
 * parsers and slot setters, the -T dump, and robustness on every prefix of a
 * valid config and on random bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/gw.h"
#include "tests/unit/test.h"

static char tmpdir[64];

/* Load `text` as "t.conf" (includes resolve under tmpdir); 0 or -1 with err filled. */
static int load(gw_conf_t *cf, const char *text, gw_conf_err_t *err)
{
    return gw_conf_load_string(cf, "t.conf", text, tmpdir[0] ? tmpdir : "/nonexistent", err);
}

/* The error `text` produces ("" when it loads). */
static const char *error_of(const char *text)
{
    static gw_conf_err_t err;
    gw_conf_t cf;

    memset(&err, 0, sizeof(err));
    if (load(&cf, text, &err) == 0) {
        gw_conf_free(&cf);
        return "";
    }
    return err.msg;
}

static void write_file(const char *rel, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void test_directives(void)
{
    gw_conf_t cf;
    gw_conf_err_t err;
    const gw_conf_node_t *n, *http, *srv;
    const char *text = "worker_processes 4;\n"
                       "\n"
                       "events { }\n"
                       "http {\n"
                       "    server {\n"
                       "        listen 80 default_server;\n"
                       "        location / { return 200; }\n"
                       "    }\n"
                       "    keepalive_timeout 65s;\n"
                       "}\n"
                       "noargs;";

    CHECK_INT(load(&cf, text, &err), 0);
    CHECK_INT(cf.root.is_block, 1);
    CHECK_INT(cf.root.nargs, 0);
    CHECK_INT(cf.root.nchildren, 4);
    if (cf.root.nchildren != 4)
        return;
    n = cf.root.children;
    CHECK_STR(n[0].args[0], "worker_processes");
    CHECK_STR(n[0].args[1], "4");
    CHECK(n[0].args[2] == NULL);
    CHECK_INT(n[0].nargs, 2);
    CHECK_INT(n[0].is_block, 0);
    CHECK_INT(n[0].line, 1);
    CHECK_STR(n[0].file, "t.conf");
    CHECK_STR(n[1].args[0], "events");
    CHECK_INT(n[1].is_block, 1);
    CHECK_INT(n[1].nchildren, 0);
    CHECK_INT(n[1].line, 3);
    http = &n[2];
    CHECK_INT(http->line, 4);
    CHECK_INT(http->nchildren, 2);
    srv = &http->children[0];
    CHECK_STR(srv->args[0], "server");
    CHECK_INT(srv->line, 5);
    CHECK_INT(srv->nchildren, 2);
    CHECK_INT(srv->children[0].nargs, 3);
    CHECK_STR(srv->children[0].args[2], "default_server");
    CHECK_INT(srv->children[0].line, 6);
    CHECK_STR(srv->children[1].args[1], "/");
    CHECK_INT(srv->children[1].children[0].line, 7);
    CHECK_STR(srv->children[1].children[0].args[1], "200");
    CHECK_STR(http->children[1].args[1], "65s");
    CHECK_INT(http->children[1].line, 9);
    CHECK_STR(n[3].args[0], "noargs");
    CHECK_INT(n[3].nargs, 1);
    CHECK_INT(n[3].line, 11);
    CHECK_INT(cf.nfiles, 1);
    CHECK_STR(cf.files[0], "t.conf");
    gw_conf_free(&cf);
    gw_conf_free(&cf); /* a freed conf is zeroed: freeing again is harmless */

    /* an empty file and a file of comments are valid */
    CHECK_STR(error_of(""), "");
    CHECK_STR(error_of("# nothing\n   \t\r\n# more"), "");
}

/* Load `text`, expect one directive, and return its args joined by '|' (static buffer). */
static const char *args_of(const char *text)
{
    static char out[1100];
    gw_conf_t cf;
    gw_conf_err_t err;

    if (load(&cf, text, &err) < 0)
        snprintf(out, sizeof(out), "ERROR %s", err.msg);
    else if (cf.root.nchildren != 1)
        snprintf(out, sizeof(out), "%u directives", cf.root.nchildren);
    else {
        out[0] = '\0';
        for (uint32_t i = 0; i < cf.root.children[0].nargs; i++)
            snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? "|" : "",
                     cf.root.children[0].args[i]);
    }
    gw_conf_free(&cf);
    return out;
}

static void test_quoting(void)
{
    CHECK_STR(args_of("a \"\" '';"), "a||");
    CHECK_STR(args_of("a \"x y\" 'p q';"), "a|x y|p q");
    CHECK_STR(args_of("a \"it's\" 'say \"hi\"';"), "a|it's|say \"hi\"");
    CHECK_STR(args_of("a \"q\\\"q\" 's\\'s' \"b\\\\s\";"), "a|q\"q|s's|b\\s");
    CHECK_STR(args_of("a \"\\n\\t\\r\";"), "a|\n\t\r");
    /* unknown escapes stay as written: regexes survive */
    CHECK_STR(args_of("location ~ \\.php$ { }"), "location|~|\\.php$");
    CHECK_STR(args_of("location ~ \"\\d+\\.(js|css)$\" { }"), "location|~|\\d+\\.(js|css)$");
    CHECK_STR(args_of("a \"^/a{2}$\";"), "a|^/a{2}$");
    /* escapes work unquoted too; an escaped space or ';' does not end the word */
    CHECK_STR(args_of("a b\\\"c x\\;y p\\ q \\\\;"), "a|b\"c|x\\;y|p\\ q|\\");
    /* '}' does not end an unquoted word, '{' after '$' does not either (nginx) */
    CHECK_STR(args_of("set $a ${host}x;"), "set|$a|${host}x");
    CHECK_STR(args_of("a b}c;"), "a|b}c");
    CHECK_STR(args_of("a b\"c'd;"), "a|b\"c'd");
    /* a ')' may follow a closing quote and is an argument of its own */
    CHECK_STR(args_of("if ($a = \"b\") { }"), "if|($a|=|b|)");
    /* a quoted string may end right at ';' or '{' */
    CHECK_STR(args_of("a \"b\";"), "a|b");
    CHECK_STR(args_of("\"quoted name\" x;"), "quoted name|x");
    CHECK_STR(args_of("a\"b\"{ }"), "a\"b\"");
    /* tabs, CRs and newlines separate arguments */
    CHECK_STR(args_of("a\tb\r\nc\n;"), "a|b|c");
    /* '#' starts a comment only where an argument could */
    CHECK_STR(args_of("a b#c \"#d\" # e f;\n;"), "a|b#c|#d");
    CHECK_STR(args_of("# one\n  # two\nx; # three"), "x");
    CHECK_STR(args_of("a; # comment at end of file without newline"), "a");
}

static void test_lines(void)
{
    gw_conf_t cf;
    gw_conf_err_t err;
    const char *text = "a \"multi\nline\n\";\n"        /* 1-3 */
                       "# comment ; { } \"\n"          /* 4 */
                       "b 'x\n"                        /* 5 */
                       "y' # still b\n"                /* 6 */
                       "  c\n"                         /* 7 */
                       ";\n"                           /* 8 */
                       "\n"                            /* 9 */
                       "blk\n{\nd;\n}\n"               /* 10-13 */
                       "e \\\n;";                      /* 14-15 */

    CHECK_INT(load(&cf, text, &err), 0);
    CHECK_INT(cf.root.nchildren, 4);
    if (cf.root.nchildren == 4) {
        CHECK_INT(cf.root.children[0].line, 1);
        CHECK_STR(cf.root.children[0].args[1], "multi\nline\n");
        CHECK_INT(cf.root.children[1].line, 5);
        CHECK_INT(cf.root.children[1].nargs, 3);
        CHECK_STR(cf.root.children[1].args[1], "x\ny");
        CHECK_INT(cf.root.children[2].line, 10);
        CHECK_INT(cf.root.children[2].children[0].line, 12);
        CHECK_INT(cf.root.children[3].line, 14);
        CHECK_STR(cf.root.children[3].args[1], "\\\n");
    }
    gw_conf_free(&cf);
}

static void test_syntax_errors(void)
{
    CHECK_STR(error_of("a;\n}\n"), "unexpected \"}\" in t.conf:2");
    CHECK_STR(error_of("a {\n  b;\n}\n}"), "unexpected \"}\" in t.conf:4");
    CHECK_STR(error_of("http {\n  server {\n    a;\n  }\n"), "unexpected end of file, expecting \"}\" in t.conf:5");
    CHECK_STR(error_of("a {\n# }\n"), "unexpected end of file, expecting \"}\" in t.conf:3");
    CHECK_STR(error_of("a;\nb c"), "unexpected end of file, expecting \";\" or \"}\" in t.conf:2");
    CHECK_STR(error_of("a \"open\n\n"), "unexpected end of file, expecting \";\" or \"}\" in t.conf:3");
    CHECK_STR(error_of("a 'open"), "unexpected end of file, expecting \";\" or \"}\" in t.conf:1");
    CHECK_STR(error_of("a \\"), "unexpected end of file, expecting \";\" or \"}\" in t.conf:1");
    CHECK_STR(error_of("a \"b\""), "unexpected end of file, expecting \";\" or \"}\" in t.conf:1");
    CHECK_STR(error_of("a {\n  b c }\n"), "unexpected \"}\" in t.conf:2");
    CHECK_STR(error_of("a;\n\n{ b; }"), "unexpected \"{\" in t.conf:3");
    CHECK_STR(error_of("a;\n  ;"), "unexpected \";\" in t.conf:2");
    CHECK_STR(error_of("a {\n ;\n}"), "unexpected \";\" in t.conf:2");
    CHECK_STR(error_of("a \"foo\"bar;"), "unexpected \"b\" in t.conf:1");
    CHECK_STR(error_of("a 'x\ny'z;"), "unexpected \"z\" in t.conf:2");
    CHECK_STR(error_of("a \"x\"\"y\";"), "unexpected \"\"\" in t.conf:1");
    CHECK_STR(error_of("a \"x\"#c\n;"), "unexpected \"#\" in t.conf:1");
    CHECK_STR(error_of("a \"x\"\x01;"), "unexpected \"\\x01\" in t.conf:1");
    /* lines keep counting across comments and multi-line strings before the error */
    CHECK_STR(error_of("# 1\n# 2 }\na \"3\n4\n5\";\n}"), "unexpected \"}\" in t.conf:6");

    /* nesting is bounded, so hostile input cannot exhaust the stack */
    {
        char deep[4000] = "";

        for (int i = 0; i < 500; i++)
            strcat(deep, "a{");
        CHECK_CONTAINS(error_of(deep), "too deep block nesting");
    }
}

static void test_error_format(void)
{
    gw_conf_err_t err;
    gw_conf_node_t n = {.file = "x.conf", .line = 7};
    char big[2000];

    CHECK_INT(gw_conf_error(&err, &n, "bad \"%s\"", "v"), -1);
    CHECK_STR(err.msg, "bad \"v\" in x.conf:7");
    n.file = "command line";
    gw_conf_error(&err, &n, "oops");
    CHECK_STR(err.msg, "oops in command line");
    gw_conf_error(&err, NULL, "plain");
    CHECK_STR(err.msg, "plain");
    /* a long message is cut, the location is not */
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    n.file = "x.conf";
    gw_conf_error(&err, &n, "%s", big);
    CHECK_INT(strlen(err.msg), sizeof(err.msg) - 1);
    CHECK(strcmp(err.msg + strlen(err.msg) - 12, " in x.conf:7") == 0);
}

static void test_include(void)
{
    gw_conf_t cf;
    gw_conf_err_t err;
    char main_path[128], want[512];
    const gw_conf_node_t *n;

    snprintf(main_path, sizeof(main_path), "%s/main.conf", tmpdir);
    mkdir(strcat(strcpy(want, tmpdir), "/conf.d"), 0700);
    write_file("conf.d/b.conf", "b1;\nb2 x;\n");
    write_file("conf.d/a.conf", "\n\na1;\ninclude inner.inc;\n");
    write_file("conf.d/skip.txt", "never;\n");
    write_file("inner.inc", "inner;");
    write_file("main.conf", "first;\n"
                            "http {\n"
                            "    include conf.d/*.conf;\n"
                            "    include nothing/*.conf;\n"
                            "}\n"
                            "include \"" "conf.d/b.conf\";\n"
                            "last;\n");

    CHECK_INT(gw_conf_load(&cf, main_path, NULL, &err), 0);
    snprintf(want, sizeof(want), "%s/", tmpdir);
    CHECK_STR(cf.conf_prefix, want);
    CHECK_INT(cf.root.nchildren, 5);
    if (cf.root.nchildren == 5) {
        n = cf.root.children;
        CHECK_STR(n[0].args[0], "first");
        CHECK_STR(n[0].file, main_path);
        CHECK_INT(n[1].nchildren, 4);
        if (n[1].nchildren == 4) {
            const gw_conf_node_t *h = n[1].children;

            CHECK_STR(h[0].args[0], "a1"); /* sorted: a.conf before b.conf */
            CHECK_INT(h[0].line, 3);
            snprintf(want, sizeof(want), "%s/conf.d/a.conf", tmpdir);
            CHECK_STR(h[0].file, want);
            CHECK_STR(h[1].args[0], "inner"); /* relative to the prefix, not to a.conf */
            snprintf(want, sizeof(want), "%s/inner.inc", tmpdir);
            CHECK_STR(h[1].file, want);
            CHECK_STR(h[2].args[0], "b1");
            CHECK_STR(h[3].args[1], "x");
            CHECK_INT(h[3].line, 2);
        }
        CHECK_STR(n[2].args[0], "b1");
        CHECK_STR(n[4].args[0], "last");
        CHECK_INT(n[4].line, 7);
        CHECK_STR(n[4].file, main_path);
    }
    /* every file once, in the order first read */
    CHECK_INT(cf.nfiles, 4);
    if (cf.nfiles == 4) {
        CHECK_STR(cf.files[0], main_path);
        CHECK_CONTAINS(cf.files[1], "/conf.d/a.conf");
        CHECK_CONTAINS(cf.files[2], "/inner.inc");
        CHECK_CONTAINS(cf.files[3], "/conf.d/b.conf");
    }

    /* -T output */
    {
        char dump_path[128], buf[4096] = "", expect[4096];
        int fd;
        ssize_t r;

        snprintf(dump_path, sizeof(dump_path), "%s/dump.out", tmpdir);
        fd = open(dump_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        CHECK(fd >= 0);
        CHECK_INT(gw_conf_dump(&cf, fd), 0);
        r = pread(fd, buf, sizeof(buf) - 1, 0);
        CHECK(r > 0);
        buf[r > 0 ? r : 0] = '\0';
        close(fd);
        snprintf(expect, sizeof(expect),
                 "# configuration file %s:\nfirst;\nhttp {\n    include conf.d/*.conf;\n    include nothing/*.conf;\n}\n"
                 "include \"conf.d/b.conf\";\nlast;\n\n"
                 "# configuration file %s/conf.d/a.conf:\n\n\na1;\ninclude inner.inc;\n\n"
                 "# configuration file %s/inner.inc:\ninner;\n"
                 "# configuration file %s/conf.d/b.conf:\nb1;\nb2 x;\n\n",
                 main_path, tmpdir, tmpdir, tmpdir);
        CHECK_STR(buf, expect);
        CHECK_INT(gw_conf_dump(&cf, -1), -EBADF);
    }
    gw_conf_free(&cf);

    /* absolute include from a string config */
    snprintf(want, sizeof(want), "x;\ninclude %s/inner.inc;\ny;", tmpdir);
    CHECK_INT(load(&cf, want, &err), 0);
    CHECK_INT(cf.root.nchildren, 3);
    CHECK_INT(cf.nfiles, 2);
    gw_conf_free(&cf);

    /* include errors, each at the include's file:line */
    snprintf(want, sizeof(want), "open() \"%s/missing.conf\" failed (2: No such file or directory) in t.conf:3",
             tmpdir);
    CHECK_STR(error_of("a;\n\ninclude missing.conf;"), want);
    CHECK_STR(error_of("a;\ninclude;"), "invalid number of arguments in \"include\" directive in t.conf:2");
    CHECK_STR(error_of("\ninclude a b;"), "invalid number of arguments in \"include\" directive in t.conf:2");
    CHECK_STR(error_of("a;\ninclude x { }"), "unexpected \"{\" in t.conf:2");
    CHECK_CONTAINS(error_of("include conf.d;"), "read() \"");
    CHECK_CONTAINS(error_of("include conf.d;"), "(21: Is a directory) in t.conf:1");

    /* an error inside an included file names that file and line */
    write_file("bad.inc", "ok;\n\n}\n");
    snprintf(want, sizeof(want), "unexpected \"}\" in %s/bad.inc:3", tmpdir);
    CHECK_STR(error_of("x {\n include bad.inc;\n}"), want);
    write_file("open.inc", "x {\n");
    snprintf(want, sizeof(want), "unexpected end of file, expecting \"}\" in %s/open.inc:2", tmpdir);
    CHECK_STR(error_of("include open.inc;"), want);

    /* a file including itself, directly or through a glob */
    write_file("self.conf", "a;\ninclude self.conf;\n");
    snprintf(want, sizeof(want), "recursive include of \"%s/self.conf\" in %s/self.conf:2", tmpdir, tmpdir);
    CHECK_STR(error_of("include self.conf;"), want);
    mkdir(strcat(strcpy(want, tmpdir), "/loop"), 0700);
    write_file("loop/1.conf", "include loop/*.conf;\n");
    write_file("loop/2.conf", "include loop/*.conf;\n");
    CHECK_CONTAINS(error_of("include loop/*.conf;"), "recursive include of");

    /* a chain deeper than the limit */
    for (int i = 0; i < 40; i++) {
        char name[32], body[64];

        snprintf(name, sizeof(name), "chain%d.conf", i);
        snprintf(body, sizeof(body), "c%d;\ninclude chain%d.conf;\n", i, i + 1);
        write_file(name, i == 39 ? "end;\n" : body);
    }
    CHECK_STR(error_of("include chain8.conf;"), ""); /* 31 deep: fine */
    CHECK_CONTAINS(error_of("include chain0.conf;"), "too deep include nesting (more than 32 levels)");
    snprintf(want, sizeof(want), "in %s/chain31.conf:2", tmpdir);
    CHECK_CONTAINS(error_of("include chain0.conf;"), want);

    /* the main file itself */
    snprintf(want, sizeof(want), "%s/none.conf", tmpdir);
    CHECK_INT(gw_conf_load(&cf, want, NULL, &err), -1);
    {
        char msg[600];

        snprintf(msg, sizeof(msg), "open() \"%s\" failed (2: No such file or directory)", want);
        CHECK_STR(err.msg, msg);
    }
    CHECK(cf._arena == NULL && cf.nfiles == 0);
}

static void test_prefix(void)
{
    gw_conf_t cf;
    gw_conf_err_t err;

    CHECK_INT(gw_conf_load_string(&cf, "dir/sub/x.conf", "a;", NULL, &err), 0);
    CHECK_STR(cf.conf_prefix, "dir/sub/");
    gw_conf_free(&cf);
    CHECK_INT(gw_conf_load_string(&cf, "x.conf", "a;", NULL, &err), 0);
    CHECK_STR(cf.conf_prefix, "./");
    gw_conf_free(&cf);
    CHECK_INT(gw_conf_load_string(&cf, "x.conf", "a;", "/etc/gw", &err), 0);
    CHECK_STR(cf.conf_prefix, "/etc/gw/");
    gw_conf_free(&cf);
    CHECK_INT(gw_conf_load_string(&cf, "x.conf", "a;", "/etc/gw/", &err), 0);
    CHECK_STR(cf.conf_prefix, "/etc/gw/");
    gw_conf_free(&cf);
}

static void test_extra(void)
{
    gw_conf_t cf;
    gw_conf_err_t err;
    char path[128];

    write_file("g.conf", "from_file 1;\n");
    snprintf(path, sizeof(path), "%s/g.conf", tmpdir);
    CHECK_INT(gw_conf_load(&cf, path, "daemon off; worker_processes 2;", &err), 0);
    CHECK_INT(cf.root.nchildren, 3);
    if (cf.root.nchildren == 3) {
        CHECK_STR(cf.root.children[0].args[0], "daemon");
        CHECK_STR(cf.root.children[0].file, "command line");
        CHECK_STR(cf.root.children[1].args[1], "2");
        CHECK_STR(cf.root.children[2].args[0], "from_file");
        CHECK_STR(cf.root.children[2].file, path);
        gw_conf_error(&err, &cf.root.children[1], "bad");
        CHECK_STR(err.msg, "bad in command line");
    }
    CHECK_INT(cf.nfiles, 1); /* -g is not a file */
    gw_conf_free(&cf);

    CHECK_INT(gw_conf_load(&cf, path, "daemon off", &err), -1);
    CHECK_STR(err.msg, "unexpected end of parameter, expecting \";\" in command line");
    CHECK_INT(gw_conf_load(&cf, path, "events { }", &err), -1);
    CHECK_STR(err.msg, "block directives are not supported in -g option in command line");
    CHECK_INT(gw_conf_load(&cf, path, "a; }", &err), -1);
    CHECK_STR(err.msg, "unexpected \"}\" in command line");
    CHECK_INT(gw_conf_load(&cf, path, "", &err), 0);
    CHECK_INT(cf.root.nchildren, 1);
    gw_conf_free(&cf);
    /* -g may include, relative to the main file's directory */
    CHECK_INT(gw_conf_load(&cf, path, "include inner.inc;", &err), 0);
    CHECK_INT(cf.root.nchildren, 2);
    if (cf.root.nchildren == 2)
        CHECK_STR(cf.root.children[0].args[0], "inner");
    gw_conf_free(&cf);
}

/* A fake module: a main conf with slots, a block whose setter recurses. */
typedef struct fake_conf {
    int flag;
    uint64_t num, size, msec;
    char *str;
    int blocks, custom;
} fake_conf_t;

static const gw_conf_cmd_table_t *fake_tables;

static int set_block(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    fake_conf_t *fc = conf;

    (void)cmd;
    fc->blocks++;
    return gw_conf_apply(n->children, n->nchildren, GW_CONF_LOCATION, fake_tables, conf, user, err);
}

static int set_custom(const gw_conf_node_t *n, const gw_conf_cmd_t *cmd, void *conf, void *user, gw_conf_err_t *err)
{
    fake_conf_t *fc = conf;

    (void)cmd;
    CHECK(user == (void *)&fake_tables);
    if (strcmp(n->args[1], "fail") == 0)
        return gw_conf_error(err, n, "custom failure");
    fc->custom += (int)n->nargs - 1;
    return 0;
}

static const gw_conf_cmd_t fake_cmds[] = {
    {"flag", GW_CONF_MAIN | GW_CONF_LOCATION, GW_CONF_FLAG, gw_conf_set_flag_slot, offsetof(fake_conf_t, flag)},
    {"num", GW_CONF_MAIN, GW_CONF_TAKE1, gw_conf_set_uint_slot, offsetof(fake_conf_t, num)},
    {"size", GW_CONF_MAIN, GW_CONF_TAKE1, gw_conf_set_size_slot, offsetof(fake_conf_t, size)},
    {"msec", GW_CONF_MAIN, GW_CONF_TAKE1, gw_conf_set_msec_slot, offsetof(fake_conf_t, msec)},
    {"str", GW_CONF_MAIN, GW_CONF_TAKE1, gw_conf_set_str_slot, offsetof(fake_conf_t, str)},
    {"loc", GW_CONF_MAIN, GW_CONF_BLOCK | GW_CONF_TAKE1, set_block, 0},
    {NULL, 0, 0, NULL, 0},
};

static const gw_conf_cmd_t fake_cmds2[] = {
    {"custom", GW_CONF_MAIN | GW_CONF_LOCATION, GW_CONF_TAKE12, set_custom, 0},
    {"more", GW_CONF_MAIN, GW_CONF_1MORE, NULL, 0},
    {"more2", GW_CONF_MAIN, GW_CONF_2MORE, NULL, 0},
    {"none", GW_CONF_MAIN, GW_CONF_NOARGS, NULL, 0},
    {"seven", GW_CONF_MAIN, GW_CONF_TAKE7 | GW_CONF_TAKE3, NULL, 0},
    {"http_only", GW_CONF_HTTP, GW_CONF_NOARGS, NULL, 0},
    {NULL, 0, 0, NULL, 0},
};

static const gw_conf_cmd_table_t fake_all[] = {fake_cmds, fake_cmds2, NULL};

static void fake_init(fake_conf_t *fc)
{
    memset(fc, 0, sizeof(*fc));
    fc->flag = GW_CONF_UNSET_INT;
    fc->num = GW_CONF_UNSET_U64;
    fc->size = GW_CONF_UNSET_U64;
    fc->msec = GW_CONF_UNSET_MSEC;
}

/* Load and apply `text` in the main context; the error ("" on success). */
static const char *apply_error(const char *text, fake_conf_t *fc)
{
    static gw_conf_err_t err;
    gw_conf_t cf;
    int rc;

    fake_init(fc);
    if (load(&cf, text, &err) < 0)
        return err.msg;
    rc = gw_conf_apply(cf.root.children, cf.root.nchildren, GW_CONF_MAIN, fake_all, fc, &fake_tables, &err);
    gw_conf_free(&cf);
    free(fc->str);
    fc->str = NULL;
    return rc == 0 ? "" : err.msg;
}

static void test_apply(void)
{
    fake_conf_t fc;
    gw_conf_t cf;
    gw_conf_err_t err;

    fake_tables = fake_all;
    CHECK_INT(load(&cf, "flag ON;\nnum 42;\nsize 64k;\nmsec 1h30m;\nstr \"a b\";\n"
                        "loc /x {\n  flag off;\n  custom 1 2;\n}\nmore a b c d e f g h i;\nmore2 a b;\n"
                        "none;\nseven 1 2 3;\nseven 1 2 3 4 5 6 7;\n",
                   &err),
              0);
    fake_init(&fc);
    CHECK_INT(gw_conf_apply(cf.root.children, cf.root.nchildren, GW_CONF_MAIN, fake_all, &fc, &fake_tables, &err),
              -1);
    /* the location's "flag off" is a duplicate of the main "flag ON" in the same struct */
    CHECK_STR(err.msg, "\"flag\" directive is duplicate in t.conf:7");
    gw_conf_free(&cf);
    free(fc.str);

    CHECK_STR(apply_error("flag ON;\nnum 42;\nsize 64k;\nmsec 1h30m;\nloc /x {\n  custom 1 2;\n}\n"
                          "more a b c d e f g h i;\nmore2 a b;\nnone;\nseven 1 2 3;\nseven 1 2 3 4 5 6 7;\n",
                          &fc),
              "");
    CHECK_INT(fc.flag, 1);
    CHECK_INT(fc.num, 42);
    CHECK_INT(fc.size, 65536);
    CHECK_INT(fc.msec, 5400000);
    CHECK_INT(fc.blocks, 1);
    CHECK_INT(fc.custom, 2);

    /* the str slot keeps a copy the owner frees */
    fake_init(&fc);
    CHECK_INT(load(&cf, "str \"a b\";", &err), 0);
    CHECK_INT(gw_conf_apply(cf.root.children, 1, GW_CONF_MAIN, fake_all, &fc, NULL, &err), 0);
    gw_conf_free(&cf);
    CHECK_STR(fc.str, "a b");
    free(fc.str);

    CHECK_STR(apply_error("none;\nnope 1;", &fc), "unknown directive \"nope\" in t.conf:2");
    CHECK_STR(apply_error("\nhttp_only;", &fc), "\"http_only\" directive is not allowed here in t.conf:2");
    CHECK_STR(apply_error("num;", &fc), "invalid number of arguments in \"num\" directive in t.conf:1");
    CHECK_STR(apply_error("num 1\n 2;", &fc), "invalid number of arguments in \"num\" directive in t.conf:1");
    CHECK_STR(apply_error("none x;", &fc), "invalid number of arguments in \"none\" directive in t.conf:1");
    CHECK_STR(apply_error("more;", &fc), "invalid number of arguments in \"more\" directive in t.conf:1");
    CHECK_STR(apply_error("more2 a;", &fc), "invalid number of arguments in \"more2\" directive in t.conf:1");
    CHECK_STR(apply_error("seven 1 2;", &fc), "invalid number of arguments in \"seven\" directive in t.conf:1");
    CHECK_STR(apply_error("seven 1 2 3 4 5 6 7 8;", &fc),
              "invalid number of arguments in \"seven\" directive in t.conf:1");
    CHECK_STR(apply_error("custom 1 2 3;", &fc), "invalid number of arguments in \"custom\" directive in t.conf:1");
    CHECK_STR(apply_error("flag;", &fc), "invalid number of arguments in \"flag\" directive in t.conf:1");
    CHECK_STR(apply_error("flag on off;", &fc), "invalid number of arguments in \"flag\" directive in t.conf:1");
    CHECK_STR(apply_error("\n\nflag yes;", &fc),
              "invalid value \"yes\" in \"flag\" directive, it must be \"on\" or \"off\" in t.conf:3");
    CHECK_STR(apply_error("loc /x;", &fc), "directive \"loc\" has no opening \"{\" in t.conf:1");
    CHECK_STR(apply_error("none;\nnum 1 { }", &fc), "unexpected \"{\" in t.conf:2");
    CHECK_STR(apply_error("loc /x {\n  num 1;\n}", &fc), "\"num\" directive is not allowed here in t.conf:2");
    CHECK_STR(apply_error("loc /x {\n\n  custom fail;\n}", &fc), "custom failure in t.conf:3");
    CHECK_STR(apply_error("flag off;\nflag off;", &fc), "\"flag\" directive is duplicate in t.conf:2");
    CHECK_INT(fc.flag, 0);
    CHECK_STR(apply_error("num 1;\nnum 2;", &fc), "\"num\" directive is duplicate in t.conf:2");
    CHECK_STR(apply_error("size 1k;\n\nsize 1k;", &fc), "\"size\" directive is duplicate in t.conf:3");
    CHECK_STR(apply_error("msec 1s;\nmsec 1s;", &fc), "\"msec\" directive is duplicate in t.conf:2");
    CHECK_STR(apply_error("str a;\nstr b;", &fc), "\"str\" directive is duplicate in t.conf:2");
    CHECK_STR(apply_error("num -1;", &fc), "\"num\" directive invalid number in t.conf:1");
    CHECK_STR(apply_error("num 18446744073709551615;", &fc), "\"num\" directive invalid number in t.conf:1");
    CHECK_STR(apply_error("size 1x;", &fc), "\"size\" directive invalid value in t.conf:1");
    CHECK_STR(apply_error("msec 10q;", &fc), "\"msec\" directive invalid value in t.conf:1");

    /* the setters on their own also refuse a missing value */
    {
        gw_conf_node_t n = {.args = (char *[]){"x", NULL}, .nargs = 1, .file = "f", .line = 2};
        gw_conf_cmd_t cmd = {"x", GW_CONF_MAIN, GW_CONF_NOARGS, NULL, offsetof(fake_conf_t, num)};

        fake_init(&fc);
        CHECK_INT(gw_conf_set_uint_slot(&n, &cmd, &fc, NULL, &err), -1);
        CHECK_STR(err.msg, "invalid number of arguments in \"x\" directive in f:2");
    }

    /* no tables at all */
    CHECK_INT(load(&cf, "a;", &err), 0);
    CHECK_INT(gw_conf_apply(cf.root.children, 1, GW_CONF_MAIN, NULL, NULL, NULL, &err), -1);
    CHECK_STR(err.msg, "unknown directive \"a\" in t.conf:1");
    CHECK_INT(gw_conf_apply(cf.root.children, 0, GW_CONF_MAIN, NULL, NULL, NULL, &err), 0);
    gw_conf_free(&cf);
}

static void test_parsers(void)
{
    static const struct {
        int (*fn)(const char *, uint64_t *);
        const char *in;
        int rc;
        uint64_t out;
    } cases[] = {
        {gw_conf_parse_uint, "0", 0, 0},
        {gw_conf_parse_uint, "10", 0, 10},
        {gw_conf_parse_uint, "007", 0, 7},
        {gw_conf_parse_uint, "18446744073709551615", 0, UINT64_MAX},
        {gw_conf_parse_uint, "18446744073709551616", -1, 0},
        {gw_conf_parse_uint, "99999999999999999999", -1, 0},
        {gw_conf_parse_uint, "", -1, 0},
        {gw_conf_parse_uint, "-1", -1, 0},
        {gw_conf_parse_uint, "+1", -1, 0},
        {gw_conf_parse_uint, "1x", -1, 0},
        {gw_conf_parse_uint, " 1", -1, 0},
        {gw_conf_parse_uint, "1 ", -1, 0},
        {gw_conf_parse_uint, "10s", -1, 0},

        {gw_conf_parse_size, "0", 0, 0},
        {gw_conf_parse_size, "1024", 0, 1024},
        {gw_conf_parse_size, "64k", 0, 65536},
        {gw_conf_parse_size, "64K", 0, 65536},
        {gw_conf_parse_size, "1m", 0, 1048576},
        {gw_conf_parse_size, "1M", 0, 1048576},
        {gw_conf_parse_size, "2g", 0, 2147483648ULL},
        {gw_conf_parse_size, "3G", 0, 3221225472ULL},
        {gw_conf_parse_size, "0k", 0, 0},
        {gw_conf_parse_size, "17179869183G", 0, 17179869183ULL << 30},
        {gw_conf_parse_size, "17179869184G", -1, 0},
        {gw_conf_parse_size, "18446744073709551616", -1, 0},
        {gw_conf_parse_size, "", -1, 0},
        {gw_conf_parse_size, "k", -1, 0},
        {gw_conf_parse_size, "-1", -1, 0},
        {gw_conf_parse_size, "1x", -1, 0},
        {gw_conf_parse_size, "1kk", -1, 0},
        {gw_conf_parse_size, "1kb", -1, 0},
        {gw_conf_parse_size, "1t", -1, 0},
        {gw_conf_parse_size, "1.5k", -1, 0},

        {gw_conf_parse_msec, "0", 0, 0},
        {gw_conf_parse_msec, "10", 0, 10000},
        {gw_conf_parse_msec, "10s", 0, 10000},
        {gw_conf_parse_msec, "500ms", 0, 500},
        {gw_conf_parse_msec, "1m", 0, 60000},
        {gw_conf_parse_msec, "2h", 0, 7200000},
        {gw_conf_parse_msec, "1d", 0, 86400000},
        {gw_conf_parse_msec, "1w", 0, 604800000},
        {gw_conf_parse_msec, "1M", 0, 2592000000ULL},
        {gw_conf_parse_msec, "1y", 0, 31536000000ULL},
        {gw_conf_parse_msec, "1h30m", 0, 5400000},
        {gw_conf_parse_msec, "1h 30m", 0, 5400000},
        {gw_conf_parse_msec, "1m30", 0, 90000},
        {gw_conf_parse_msec, "1s500ms", 0, 1500},
        {gw_conf_parse_msec, "1y1M1w1d1h1m1s1ms", 0, 31536000000ULL + 2592000000ULL + 604800000 + 86400000 +
                                                         3600000 + 60000 + 1000 + 1},
        {gw_conf_parse_msec, "9223372036854775807ms", 0, INT64_MAX},
        {gw_conf_parse_msec, "9223372036854775808ms", -1, 0},
        {gw_conf_parse_msec, "9223372036854776s", -1, 0},
        {gw_conf_parse_msec, "292471209y", -1, 0},
        {gw_conf_parse_msec, "99999999999999999999", -1, 0},
        {gw_conf_parse_msec, "", -1, 0},
        {gw_conf_parse_msec, "-1", -1, 0},
        {gw_conf_parse_msec, "1x", -1, 0},
        {gw_conf_parse_msec, "s", -1, 0},
        {gw_conf_parse_msec, "ms", -1, 0},
        {gw_conf_parse_msec, "1hm", -1, 0},
        {gw_conf_parse_msec, "30m1h", -1, 0},
        {gw_conf_parse_msec, "1s1s", -1, 0},
        {gw_conf_parse_msec, "1ms1s", -1, 0},
        {gw_conf_parse_msec, "1s5", -1, 0},
        {gw_conf_parse_msec, "1 2", -1, 0},
        {gw_conf_parse_msec, " 1", -1, 0},
        {gw_conf_parse_msec, "1.5s", -1, 0},
    };

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        uint64_t out = 12345;
        int rc = cases[i].fn(cases[i].in, &out);

        if (rc != cases[i].rc || (rc == 0 && out != cases[i].out))
            fprintf(stderr, "  parser case %zu \"%s\": rc %d out %" PRIu64 "\n", i, cases[i].in, rc, out);
        CHECK_INT(rc, cases[i].rc);
        if (rc == 0)
            CHECK(out == cases[i].out);
        else
            CHECK(out == 12345); /* untouched on failure */
    }
}

/*
 * Load `text` (which must not crash) and check the outcome is clean: success,
 * or an error message that names a location.
 */
static void load_clean(const char *name, const char *text, const char *extra)
{
    gw_conf_t cf;
    gw_conf_err_t err;
    int rc;

    err.msg[0] = '\0';
    if (extra == NULL)
        rc = gw_conf_load_string(&cf, name, text, "/nonexistent/", &err);
    else
        rc = gw_conf_load(&cf, name, extra, &err);
    if (rc == 0) {
        CHECK(cf.root.is_block);
        gw_conf_free(&cf);
    } else {
        CHECK_INT(rc, -1);
        CHECK(strstr(err.msg, " in ") != NULL);
        CHECK(cf._arena == NULL);
    }
}

static const char full_config[] =
    "# gateway\n"
    "worker_processes auto;\n"
    "events { worker_connections 1024; }\n"
    "http {\n"
    "    log_format main '$remote_addr - \"$request\" $status';\n"
    "    upstream app { least_conn; server 10.0.0.1:8080 weight=3 max_fails=2; keepalive 32; }\n"
    "    server {\n"
    "        listen 443 ssl;\n"
    "        server_name example.com \"*.example.org\";\n"
    "        location ~ \\.php$ { return 403; }\n"
    "        location = /a\\ b { proxy_pass http://app; }\n"
    "        location / {\n"
    "            if ($http_x = \"y\") { return 301 https://${host}$request_uri; }\n"
    "            proxy_set_header Host $host;   # keep\n"
    "            add_header X-Multi \"line\n"
    "two\";\n"
    "        }\n"
    "    }\n"
    "}\n";

static void test_every_prefix(void)
{
    char buf[sizeof(full_config)];
    char path[128];
    int ok = 0;

    for (size_t len = 0; len < sizeof(full_config); len++) {
        memcpy(buf, full_config, len);
        buf[len] = '\0';
        load_clean("t.conf", buf, NULL);
        ok += strcmp(error_of(buf), "") == 0;
    }
    CHECK(ok >= 3); /* the empty prefix, the first lines, the whole */
    CHECK_STR(error_of(full_config), "");

    /* every prefix as -g text too (a real file behind it) */
    write_file("empty.conf", "");
    snprintf(path, sizeof(path), "%s/empty.conf", tmpdir);
    for (size_t len = 0; len < 120; len++) {
        memcpy(buf, full_config + 10, len);
        buf[len] = '\0';
        load_clean(path, NULL, buf);
    }
}

static void test_random(void)
{
    static const char alphabet[] = "ab{};#\"'\\$ \n\t()x~*/";
    char buf[300];
    uint32_t seed = 12345;

    for (int iter = 0; iter < 6000; iter++) {
        size_t len;

        seed = seed * 1103515245 + 12345;
        len = (seed >> 16) % (sizeof(buf) - 1);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245 + 12345;
            if (iter % 3 == 0) /* raw bytes, no NUL (the string API stops there) */
                buf[i] = (char)(1 + (seed >> 16) % 255);
            else
                buf[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        buf[len] = '\0';
        load_clean("r.conf", buf, NULL);
    }

    /* mutations of a valid config */
    for (int iter = 0; iter < 3000; iter++) {
        char m[sizeof(full_config)];

        memcpy(m, full_config, sizeof(m));
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245 + 12345;
            m[(seed >> 8) % (sizeof(m) - 1)] = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
        }
        load_clean("m.conf", m, NULL);
    }
}

int main(void)
{
    strcpy(tmpdir, "/tmp/gw-conf-test-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    RUN(test_directives);
    RUN(test_quoting);
    RUN(test_lines);
    RUN(test_syntax_errors);
    RUN(test_error_format);
    RUN(test_include);
    RUN(test_prefix);
    RUN(test_extra);
    RUN(test_apply);
    RUN(test_parsers);
    RUN(test_every_prefix);
    RUN(test_random);

    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return gw_test_done();
}
