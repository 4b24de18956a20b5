/*
 * The command line and the main thread: nginx's flags, the quick mode, the
 * configuration test, daemonizing, the pid file, and the signal loop that
 * turns SIGTERM/SIGQUIT/SIGUSR1 into commands for the workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "cycle.h"
#include "gw.h"
#include "gw_config.h"
#include "log.h"
#include "master.h"
#include "module.h"
#include "worker.h"

/* Versions of what we were built with, for -V; defined by the modules. */
extern void gw_print_versions(FILE *out);

typedef struct options {
    const char *prefix;
    const char *conf_file;
    const char *error_log;
    const char *directives; /* -g */
    const char *signal;     /* -s */
    int test;               /* -t: 1, -T: 2 */
    int quiet;              /* -q */
    int workers;            /* --workers: 0 none, -1 auto, N */
    const char *listen;     /* quick mode */
    const char **upstreams;
    int nupstreams;
} options_t;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: gateway [-?hvVtTq] [-s signal] [-p prefix] [-e filename] [-c filename] [-g directives]\n"
            "               [--workers N|auto]\n"
            "       gateway --listen ADDR --upstream ADDR [--upstream ADDR ...] [--workers N|auto]\n"
            "\n"
            "Options:\n"
            "  -?,-h         : this help\n"
            "  -v            : show version and exit\n"
            "  -V            : show version, library versions and modules, and exit\n"
            "  -t            : test configuration and exit\n"
            "  -T            : test configuration, dump it and exit\n"
            "  -q            : suppress non-error messages during configuration testing\n"
            "  -s signal     : send signal to the running process: stop, quit, reopen, reload\n"
            "  -p prefix     : set prefix path (default: " GW_PREFIX ")\n"
            "  -e filename   : set error log file (default: logs/error.log, or stderr)\n"
            "  -c filename   : set configuration file (default: " GW_CONF_PATH ")\n"
            "  -g directives : set global directives out of configuration file\n"
            "  --workers N   : number of worker threads, or auto (one per core); overrides worker_processes\n"
            "  --listen ADDR, --upstream ADDR : quick mode, no configuration file: proxy ADDR round-robin\n"
            "                  to the upstreams, in the foreground\n");
}

static void how_to_start(void)
{
    fprintf(stderr,
            "gateway: no configuration file found at " GW_PREFIX GW_CONF_PATH "\n"
            "\n"
            "Start it with a configuration file (nginx syntax):\n"
            "    gateway -c /path/to/gateway.conf\n"
            "or in quick mode, without a file:\n"
            "    gateway --listen 127.0.0.1:8080 --upstream 127.0.0.1:3001 --upstream 127.0.0.1:3002\n"
            "\n"
            "See gateway -h for every option, and conf/example.conf for a configuration to start from.\n");
}

static int parse_workers(const char *s, int *out)
{
    char *end;
    long v;

    if (strcmp(s, "auto") == 0) {
        *out = -1;
        return 0;
    }
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 1024)
        return -1;
    *out = (int)v;
    return 0;
}

/* Returns 0 to go on, 1 to exit successfully (help, version), -1 on a usage error. */
static int parse_args(int argc, char **argv, options_t *o)
{
    o->upstreams = calloc((size_t)argc, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val;

#define NEXT_ARG()                                                                                                     \
    do {                                                                                                               \
        if (a[2] != '\0') {                                                                                            \
            val = a + 2;                                                                                               \
        } else if (i + 1 < argc) {                                                                                     \
            val = argv[++i];                                                                                           \
        } else {                                                                                                       \
            fprintf(stderr, "gateway: option \"%s\" requires an argument\n", a);                                      \
            return -1;                                                                                                 \
        }                                                                                                              \
    } while (0)

        if (strcmp(a, "--workers") == 0 || strcmp(a, "--listen") == 0 || strcmp(a, "--upstream") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gateway: option \"%s\" requires an argument\n", a);
                return -1;
            }
            val = argv[++i];
            if (a[2] == 'w' && parse_workers(val, &o->workers) < 0) {
                fprintf(stderr, "gateway: invalid --workers \"%s\" (a number or auto)\n", val);
                return -1;
            }
            if (a[2] == 'l')
                o->listen = val;
            if (a[2] == 'u')
                o->upstreams[o->nupstreams++] = val;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (a[0] != '-' || a[1] == '\0' || (a[1] != 'c' && a[1] != 'p' && a[1] != 'e' && a[1] != 'g' &&
                                            a[1] != 's' && a[2] != '\0')) {
            fprintf(stderr, "gateway: invalid option: \"%s\"\n", a);
            return -1;
        }
        switch (a[1]) {
        case '?':
        case 'h':
            usage(stdout);
            return 1;
        case 'v':
            printf("gateway version: gateway/" GW_VERSION "\n");
            return 1;
        case 'V':
            printf("gateway version: gateway/" GW_VERSION "\n");
            gw_print_versions(stdout);
            return 1;
        case 't':
            o->test = o->test > 1 ? o->test : 1;
            break;
        case 'T':
            o->test = 2;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'c':
            NEXT_ARG();
            o->conf_file = val;
            break;
        case 'p':
            NEXT_ARG();
            o->prefix = val;
            break;
        case 'e':
            NEXT_ARG();
            o->error_log = val;
            break;
        case 'g':
            NEXT_ARG();
            o->directives = val;
            break;
        case 's':
            NEXT_ARG();
            if (strcmp(val, "stop") && strcmp(val, "quit") && strcmp(val, "reopen") && strcmp(val, "reload")) {
                fprintf(stderr, "gateway: invalid option: \"-s %s\"\n", val);
                return -1;
            }
            o->signal = val;
            break;
        default:
            fprintf(stderr, "gateway: invalid option: \"%s\"\n", a);
            return -1;
        }
#undef NEXT_ARG
    }
    if ((o->listen != NULL) != (o->nupstreams > 0)) {
        fprintf(stderr, "gateway: quick mode needs both --listen and at least one --upstream\n");
        return -1;
    }
    if (o->listen && o->conf_file) {
        fprintf(stderr, "gateway: -c and --listen/--upstream exclude each other\n");
        return -1;
    }
    return 0;
}

static int safe_token(const char *s)
{
    return *s && strpbrk(s, " \t\r\n;{}\"'#\\$") == NULL;
}

/* Quick mode is sugar for a small configuration, loaded the same way as a file. */
static char *quick_config(const options_t *o)
{
    size_t cap = 512;
    char *text, *p;
    int n;

    if (!safe_token(o->listen))
        return NULL;
    for (int i = 0; i < o->nupstreams; i++) {
        if (!safe_token(o->upstreams[i]))
            return NULL;
        cap += strlen(o->upstreams[i]) + 32;
    }
    text = malloc(cap + strlen(o->listen));
    if (text == NULL)
        return NULL;
    p = text;
    n = sprintf(p, "daemon off;\nworker_processes auto;\nerror_log stderr notice;\n"
                   "events { worker_connections 4096; }\nhttp {\n    upstream quick {\n");
    p += n;
    for (int i = 0; i < o->nupstreams; i++)
        p += sprintf(p, "        server %s;\n", o->upstreams[i]);
    sprintf(p, "        keepalive 64;\n    }\n    server {\n        listen %s;\n"
               "        location / { proxy_pass http://quick; }\n    }\n}\n",
            o->listen);
    return text;
}

static char *with_slash(const char *dir)
{
    size_t n = strlen(dir);
    char *out = malloc(n + 2);

    if (out) {
        memcpy(out, dir, n);
        if (n == 0 || dir[n - 1] != '/')
            out[n++] = '/';
        out[n] = '\0';
    }
    return out;
}

static int send_signal(const gw_cycle_t *cy, const char *name)
{
    int sig = strcmp(name, "stop") == 0     ? SIGTERM
              : strcmp(name, "quit") == 0   ? SIGQUIT
              : strcmp(name, "reopen") == 0 ? SIGUSR1
                                            : SIGHUP;
    char buf[32];
    ssize_t n;
    long pid;
    int fd;

    if (cy->pid_path == NULL) {
        fprintf(stderr, "gateway: [error] no \"pid\" file configured\n");
        return 1;
    }
    fd = open(cy->pid_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "gateway: [error] open() \"%s\" failed (%d: %s)\n", cy->pid_path, errno, strerror(errno));
        return 1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    pid = strtol(buf, NULL, 10);
    if (pid <= 0) {
        fprintf(stderr, "gateway: [error] invalid PID number \"%s\" in \"%s\"\n", buf, cy->pid_path);
        return 1;
    }
    if (kill((pid_t)pid, sig) < 0) {
        fprintf(stderr, "gateway: [error] kill(%ld, %d) failed (%d: %s)\n", pid, sig, errno, strerror(errno));
        return 1;
    }
    return 0;
}

static int write_pid(const char *path)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0)
        return -errno;
    if (write(fd, buf, (size_t)n) != n) {
        int e = errno;

        close(fd);
        return -e;
    }
    close(fd);
    return 0;
}

/* nginx's ngx_daemon: detach from the terminal, keep stderr if the log goes there. */
static int daemonize(int keep_stderr)
{
    int fd;

    switch (fork()) {
    case -1:
        return -errno;
    case 0:
        break;
    default:
        _exit(0);
    }
    if (setsid() < 0)
        return -errno;
    umask(0);
    fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return -errno;
    dup2(fd, 0);
    dup2(fd, 1);
    if (!keep_stderr)
        dup2(fd, 2);
    if (fd > 2)
        close(fd);
    return 0;
}

/* Enough descriptors for every worker's connections (each proxied request holds two). */
static void raise_nofile(const gw_cycle_t *cy)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cy->workers * cy->worker_connections + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int start(gw_cycle_t **cyp, const options_t *o, const char *text)
{
    gw_cycle_t *cy = *cyp;
    gw_master_opts_t mo = {.text = text, .extra = o->directives, .error_log_fixed = o->error_log != NULL};
    int quick = text != NULL;
    char msg[512];
    sigset_t set;
    gw_worker_t *ws;
    int sfd, pipefd[2], err = 0, rc, ok = 0;
    const char *log_path = o->error_log ? o->error_log : cy->error_log;

    if (gw_log_open(log_path, (gw_log_level_t)cy->log_level) < 0) {
        fprintf(stderr, "gateway: [emerg] open() \"%s\" failed (%d: %s)\n", log_path, errno, strerror(errno));
        return 1;
    }
    if (gw_workers_check_env(msg, sizeof(msg)) < 0) {
        fprintf(stderr, "gateway: [emerg] %s\n", msg);
        gw_log(GW_LOG_EMERG, "%s", msg);
        return 1;
    }
    raise_nofile(cy);
    /* Signals go to the main thread only: block them before any worker exists
     * (threads inherit the mask) and read them from a signalfd. Blocked before
     * the pid file exists, so a `-s reopen` or `-s stop` right after start is
     * kept for the signalfd instead of killing us by its default action. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (gw_cycle_bind(cy, cy->workers, msg, sizeof(msg)) < 0) {
        fprintf(stderr, "gateway: [emerg] %s\n", msg);
        gw_log(GW_LOG_EMERG, "%s", msg);
        return 1;
    }
    if (cy->daemon && !quick && daemonize(strcmp(log_path, "stderr") == 0) < 0) {
        gw_log(GW_LOG_EMERG, "daemon() failed (%d: %s)", errno, strerror(errno));
        return 1;
    }
    if (cy->pid_path == NULL && !quick)
        cy->pid_path = gw_cycle_path(cy, "logs/gateway.pid");
    if (cy->pid_path && (err = write_pid(cy->pid_path)) < 0) {
        gw_log(GW_LOG_EMERG, "open() \"%s\" failed (%d: %s)", cy->pid_path, -err, strerror(-err));
        fprintf(stderr, "gateway: [emerg] open() \"%s\" failed (%d: %s)\n", cy->pid_path, -err, strerror(-err));
        return 1;
    }

    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
        gw_log(GW_LOG_EMERG, "signalfd()/pipe() failed (%d: %s)", errno, strerror(errno));
        return 1;
    }
    /* Only now do the ports accept: whoever sees one accept finds the pid file. */
    if (gw_cycle_start_listening(cy, cy->workers, msg, sizeof(msg)) < 0) {
        fprintf(stderr, "gateway: [emerg] %s\n", msg);
        gw_log(GW_LOG_EMERG, "%s", msg);
        if (cy->pid_path)
            unlink(cy->pid_path);
        return 1;
    }

    ws = gw_workers_start(cy, cy->workers, pipefd[1], &err);
    if (ws == NULL) {
        gw_log(GW_LOG_EMERG, "starting workers failed (%d: %s)", -err, strerror(-err));
        return 1;
    }
    for (int i = 0; i < cy->workers; i++) {
        char c = 'F';

        if (read(pipefd[0], &c, 1) == 1 && c == 'O')
            ok++;
    }
    if (ok != cy->workers) {
        gw_workers_signal(ws, cy->workers, GW_CMD_STOP_FAST);
        gw_workers_join(ws, cy->workers);
        if (cy->pid_path)
            unlink(cy->pid_path);
        return 1;
    }
    gw_log(GW_LOG_NOTICE, "gateway/" GW_VERSION " started: %d worker%s, %u listening address%s", cy->workers,
           cy->workers == 1 ? "" : "s", cy->nlistens, cy->nlistens == 1 ? "" : "es");
    atomic_store(&cy->users, cy->workers);
    rc = gw_master_run(cyp, ws, cy->workers, sfd, pipefd[0], &mo);
    cy = *cyp;
    if (cy->pid_path)
        unlink(cy->pid_path);
    gw_log(GW_LOG_NOTICE, "exit");
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    options_t o = {0};
    gw_cycle_t *cy;
    gw_conf_err_t err;
    char *prefix, *conf_file, *text = NULL;
    int r, quick;

    r = parse_args(argc, argv, &o);
    if (r != 0) {
        free(o.upstreams);
        return r > 0 ? 0 : 1;
    }
    quick = o.listen != NULL;
    prefix = with_slash(o.prefix ? o.prefix : GW_PREFIX);
    /* As nginx: a relative -c (and the default) resolve against the prefix. */
    if (quick)
        conf_file = strdup("quick mode");
    else if (o.conf_file && o.conf_file[0] == '/')
        conf_file = strdup(o.conf_file);
    else if (asprintf(&conf_file, "%s%s", prefix, o.conf_file ? o.conf_file : GW_CONF_PATH) < 0)
        conf_file = NULL;
    if (prefix == NULL || conf_file == NULL) {
        fprintf(stderr, "gateway: out of memory\n");
        return 1;
    }
    if (quick) {
        text = quick_config(&o);
        if (text == NULL) {
            fprintf(stderr, "gateway: invalid --listen or --upstream address\n");
            return 1;
        }
    } else if (!o.conf_file && access(conf_file, F_OK) != 0 && !o.signal) {
        how_to_start();
        return 1;
    }

    cy = calloc(1, sizeof(*cy));
    if (cy == NULL || gw_cycle_load(cy, prefix, conf_file, text, o.directives, &err) < 0) {
        fprintf(stderr, "gateway: [emerg] %s\n", cy ? err.msg : "out of memory");
        if (o.test)
            fprintf(stderr, "gateway: configuration file %s test failed\n", conf_file);
        if (cy)
            gw_cycle_free(cy);
        free(cy);
        return 1;
    }
    if (o.workers)
        cy->workers = o.workers < 0 ? gw_cpu_count() : o.workers;

    if (o.test) {
        if (!o.quiet)
            fprintf(stderr, "gateway: the configuration file %s syntax is ok\n", conf_file);
        if (o.test == 2)
            gw_conf_dump(&cy->conf, 1);
        if (!o.quiet)
            fprintf(stderr, "gateway: configuration file %s test is successful\n", conf_file);
        r = 0;
    } else if (o.signal) {
        r = send_signal(cy, o.signal);
    } else {
        r = start(&cy, &o, text);
    }
    gw_cycle_free(cy);
    free(cy);
    free(prefix);
    free(conf_file);
    free(text);
    free(o.upstreams);
    return r;
}
