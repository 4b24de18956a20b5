/*
 * The files error_page serves (see page_file.h). Read synchronously: error
 * pages are small and local, and this is the only place the gateway serves
 * files, so a worker blocks on the disk only for one of them.
 */
#include "page_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAGE_FILE (1024 * 1024) /* an error page bigger than this is not one */

/* nginx's built-in types (without a `types` block or mime.types): these three, else default_type. */
const char *gw_page_file_type(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');

    if (dot == NULL || (slash && dot < slash))
        return "text/plain";
    if (strcasecmp(dot, ".html") == 0)
        return "text/html";
    if (strcasecmp(dot, ".gif") == 0)
        return "image/gif";
    if (strcasecmp(dot, ".jpg") == 0)
        return "image/jpeg";
    return "text/plain";
}

/* Read a whole small file: 0, or the status nginx's static module would give (404, 403, 500). */
unsigned gw_page_file_read(const char *path, char **body, size_t *len, struct stat *st)
{
    ssize_t n;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return errno == EACCES ? 403 : errno == ENOENT || errno == ENOTDIR ? 404 : 500;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_size > MAX_PAGE_FILE) {
        close(fd);
        return 404;
    }
    *body = malloc((size_t)st->st_size + 1);
    if (*body == NULL) {
        close(fd);
        return 500;
    }
    while (got < (size_t)st->st_size && (n = read(fd, *body + got, (size_t)st->st_size - got)) > 0)
        got += (size_t)n;
    close(fd);
    *len = got;
    return 0;
}

/*
 * A file's validators as nginx's static module sends them: ETag always
 * ("mtime-size" in hex); Last-Modified and Accept-Ranges only when the
 * answer is a 200 (its header filter drops them for an error status).
 */
size_t gw_page_file_validators(const struct stat *st, unsigned status, char *out, size_t cap)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    int n = 0;

    if (status == 200) {
        gmtime_r(&st->st_mtime, &tm);
        n = snprintf(out, cap, "Last-Modified: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday],
                     tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    n += snprintf(out + n, cap - (size_t)n, "ETag: \"%llx-%llx\"\r\n", (unsigned long long)st->st_mtime,
                  (unsigned long long)st->st_size);
    if (status == 200)
        n += snprintf(out + n, cap - (size_t)n, "Accept-Ranges: bytes\r\n");
    return (size_t)n;
}
