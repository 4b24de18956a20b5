/* Files served by error_page (page_file.c). */
#ifndef GW_PAGE_FILE_H
#define GW_PAGE_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/* Read a whole small file into a malloc'ed *body: 0, or the status nginx's static module would give (404, 403, 500). */
unsigned gw_page_file_read(const char *path, char **body, size_t *len, struct stat *st);

/* The Content-Type nginx gives the file without a types block: its three built-in types, else default_type. */
const char *gw_page_file_type(const char *path);

/* The file's ETag (and, for a 200, Last-Modified and Accept-Ranges) header lines into out; returns their length. */
size_t gw_page_file_validators(const struct stat *st, unsigned status, char *out, size_t cap);

#endif
