/*
 * Tests for http/gzip.c's parsers: Accept-Encoding as nginx reads it (gzip
 * as a whole token, q=0 refuses it), nginx's msie6 test, and the three HTTP
 * date forms gzip_proxied expired compares.
 */
#include <string.h>

#include "../../../http/gzip.c"
#include "tests/unit/test.h"

static int ae(const char *v)
{
    return accepts_gzip(v, strlen(v));
}

static void test_accept_encoding(void)
{
    CHECK(ae("gzip"));
    CHECK(ae("GZip"));
    CHECK(ae("gzip, deflate"));
    CHECK(ae("deflate,gzip"));
    CHECK(ae("deflate, gzip"));
    CHECK(ae("gzip;q=1"));
    CHECK(ae("gzip; q=0.5, br"));
    CHECK(ae("gzip;q=1.000"));
    CHECK(ae("gzip;q=0.001"));
    CHECK(ae("gzip ;q=0.8"));
    CHECK(ae("x-gzip, gzip"));
    CHECK(!ae(""));
    CHECK(!ae("deflate"));
    CHECK(!ae("x-gzip"));
    CHECK(!ae("gzipx"));
    CHECK(!ae("gzip;q=0"));
    CHECK(!ae("gzip;q=0.000"));
    CHECK(!ae("gzip; q=0, deflate"));
    CHECK(!ae("gzip;q=2"));
    CHECK(!ae("gzip;level=1"));
    CHECK(!ae("gzip;q=1.5"));
    CHECK(!ae("gzip;q=0.0001"));
    CHECK(!ae("gzip;q=0.5x"));
    CHECK(!ae("gzip;q=1;"));
}

static int msie6(const char *ua)
{
    return is_msie6(ua, strlen(ua));
}

static void test_msie6(void)
{
    CHECK(msie6("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)"));
    CHECK(msie6("Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)"));
    CHECK(!msie6("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"));
    CHECK(!msie6("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"));
    CHECK(!msie6("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"));
    CHECK(!msie6("MSIE 6"));
}

static time_t date(const char *s)
{
    time_t t = -1;

    return parse_http_time(s, strlen(s), &t) == 0 ? t : -1;
}

static void test_http_dates(void)
{
    CHECK_INT(date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    CHECK_INT(date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    CHECK_INT(date("Sun Nov  6 08:49:37 1994"), 784111777);
    CHECK_INT(date("yesterday"), -1);
    CHECK_INT(date("Sun, 06 Nov 1994 08:49:37 GMT trailing"), -1);
}

int main(void)
{
    RUN(test_accept_encoding);
    RUN(test_msie6);
    RUN(test_http_dates);
    return gw_test_done();
}
