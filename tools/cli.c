#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cli_prog = "llmpi";
const char *cli_usage = "";
const char *cli_usage_extra = "";

void cli_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void cli_usage_exit(const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", cli_prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s%s", cli_usage, cli_usage_extra);
    exit(2);
}

long cli_parse_long(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) cli_die("invalid value '%s' for %s: expected an integer", s, opt);
    if (v < lo || v > hi) cli_die("value %ld for %s is out of range [%ld, %ld]", v, opt, lo, hi);
    return v;
}

double cli_parse_double(const char *opt, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) cli_die("invalid value '%s' for %s: expected a number", s, opt);
    if (v < lo || v > hi) cli_die("value %s for %s is out of range [%g, %g]", s, opt, lo, hi);
    return v;
}

char *cli_read_text_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) cli_die("%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf) { fclose(f); cli_die("%s: out of memory", path); }
    if (ferror(f)) { fclose(f); free(buf); cli_die("%s: read error", path); }
    fclose(f);
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}
