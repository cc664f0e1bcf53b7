#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_passed, n_failed;
static int case_failed, case_open, case_fail_lines;
static char case_name[256];

void t_begin(const char *fmt, ...) {
    if (case_open) t_end();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(case_name, sizeof case_name, fmt, ap);
    va_end(ap);
    case_open = 1;
    case_failed = 0;
    case_fail_lines = 0;
}

void t_fail_at(const char *file, int line, const char *fmt, ...) {
    if (!case_open) t_begin("(unnamed)");
    case_failed = 1;
    if (++case_fail_lines > 5) return; /* keep logs readable: the first few failures say enough */
    printf("FAIL [%s] %s:%d: ", case_name, file, line);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

int t_case_failed(void) { return case_failed; }

int t_end(void) {
    if (!case_open) return 1;
    case_open = 0;
    if (case_failed) {
        if (case_fail_lines > 5) printf("FAIL [%s] ... %d more failed checks\n", case_name, case_fail_lines - 5);
        n_failed++;
        return 0;
    }
    printf("ok - %s\n", case_name);
    n_passed++;
    return 1;
}

int t_summary(void) {
    if (case_open) t_end();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    fflush(stdout);
    return n_failed ? 1 : 0;
}

static char *rotating_buffer(void) {
    static char bufs[8][1024];
    static int next;
    return bufs[next++ & 7];
}

const char *t_shared(const char *rel) {
    const char *root = getenv("LLMPI_SHARED");
    char *b = rotating_buffer();
    snprintf(b, 1024, "%s/%s", root && *root ? root : "../shared", rel);
    return b;
}

void *t_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { CHECK(0, "cannot open %s: %s", path, strerror(errno)); return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((n > 0 ? (size_t)n : 0) + 1); /* +1: always NUL-terminated, so text files work as strings */
    if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) { free(p); p = NULL; }
    fclose(f);
    if (!p) { CHECK(0, "cannot read %s", path); return NULL; }
    ((char *)p)[n > 0 ? n : 0] = 0;
    *len = (size_t)n;
    return p;
}

int t_run(const char *cmdline, char **output) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s 2>&1", cmdline);
    FILE *p = popen(cmd, "r");
    if (!p) { *output = strdup(""); return -1; }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += r;
        if (cap - len < 1024) { cap *= 2; buf = realloc(buf, cap); }
    }
    buf[len] = 0;
    int st = pclose(p);
    *output = buf;
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

const char *t_tool(const char *name) {
    const char *dir = getenv("LLMPI_BINDIR");
    const char *run = getenv("LLMPI_RUN");
    char *b = rotating_buffer();
    snprintf(b, 1024, "%s%s%s/%s", run && *run ? run : "", run && *run ? " " : "", dir && *dir ? dir : ".", name);
    return b;
}

uint64_t t_rand_u64(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float t_rand_uniform(uint64_t *s, float lo, float hi) {
    return lo + (hi - lo) * (float)((t_rand_u64(s) >> 40) * (1.0 / 16777216.0));
}

float t_rand_normal(uint64_t *s) {
    double u1 = ((t_rand_u64(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (t_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

const char *t_tmpdir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/llmpi-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) { CHECK(0, "mkdtemp failed"); snprintf(dir, sizeof dir, "/tmp"); }
    }
    return dir;
}

const char *t_fake_hwmon(const char *subdir, const char *name, double watts) {
    static char root[600];
    char path[800];
    snprintf(root, sizeof root, "%s/%s", t_tmpdir(), subdir);
    const char *parts[] = { "", "/class", "/class/hwmon", "/class/hwmon/hwmon0" };
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s%s", root, parts[i]);
        mkdir(path, 0755);
    }
    snprintf(path, sizeof path, "%s/class/hwmon/hwmon0/name", root);
    FILE *f = fopen(path, "w");
    if (f) { fprintf(f, "%s\n", name); fclose(f); }
    snprintf(path, sizeof path, "%s/class/hwmon/hwmon0/power1_input", root);
    f = fopen(path, "w");
    if (f) { fprintf(f, "%.0f\n", watts * 1e6); fclose(f); }
    CHECK(f != NULL, "cannot create the fake hwmon tree under %s", root);
    return root;
}
