/* Power sensors for the sampler (see docs/energy.md and ../shared/docs/power.md):
 *   pmic   Raspberry Pi 5 PMIC rails via the firmware mailbox (/dev/vcio) or `vcgencmd pmic_read_adc`
 *   hwmon  Linux hwmon: power*_input (uW), energy*_input (uJ) or in*_input (mV) x curr*_input (mA)
 *   rapl   /sys/class/powercap/intel-rapl:* energy_uj counters, unwrapped at max_energy_range_uj
 *   um34c / um25c  RDTech USB meters over (Bluetooth) serial: 0xF0 -> 130-byte big-endian frame
 *   cmd    a command printing watts per line;  file  a file holding watts
 * plus the auxiliary readings taken with each sample: CPU temperature, frequency, throttling.
 * Every sysfs path is under power_config.sysfs_root so tests can use a fake tree. */
#include "power_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PATH_LEN 768

/* ---------------------------------------------------------------- small helpers */

static bool pathf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool pathf(char *dst, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(dst, n, fmt, ap);
    va_end(ap);
    return r >= 0 && (size_t)r < n;
}

static void msgf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msgf(char *dst, size_t n, const char *fmt, ...) {
    if (!dst || n == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Whole small file (sysfs attribute) into buf, NUL-terminated. Returns its length or -1 (errno). */
static int read_text(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    while (len + 1 < n) {
        ssize_t r = read(fd, buf + len, n - 1 - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0;
    return (int)len;
}

static void trim_end(char *s) {
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = 0;
}

/* A sysfs integer ("12345\n"). Returns 0, or -1 with errno (EINVAL for junk). */
static int read_ll(const char *path, long long *v) {
    char b[64];
    if (read_text(path, b, sizeof b) < 0) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(b, &end, 10);
    if (end == b || errno) { errno = EINVAL; return -1; }
    while (isspace((unsigned char)*end)) end++;
    if (*end) { errno = EINVAL; return -1; }
    *v = x;
    return 0;
}

/* "3.25", "3.25 W", "3.25W\n" -> 3.25. Returns 0 or -1. */
static int parse_watts(const char *s, double *w) {
    while (isspace((unsigned char)*s)) s++;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) return -1;
    while (isspace((unsigned char)*end)) end++;
    if (*end == 'W' || *end == 'w') end++;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return -1;
    *w = v;
    return 0;
}

/* Directory entries starting with `prefix`, sorted with numbers compared numerically
 * (hwmon2 < hwmon10). Returns a malloc'd array of malloc'd names (count in *n), or NULL. */
static int natural_cmp(const void *pa, const void *pb) {
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            char *ea, *eb;
            unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
            if (x != y) return x < y ? -1 : 1;
            a = ea;
            b = eb;
        } else {
            if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    return (unsigned char)*a - (unsigned char)*b;
}

static char **list_dir(const char *dir, const char *prefix, int *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int cap = 16;
    char **v = malloc((size_t)cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        if (*n == cap) {
            char **nv = realloc(v, (size_t)cap * 2 * sizeof *v);
            if (!nv) break;
            v = nv;
            cap *= 2;
        }
        v[*n] = strdup(e->d_name);
        if (v[*n]) (*n)++;
    }
    closedir(d);
    if (v && *n > 1) qsort(v, (size_t)*n, sizeof *v, natural_cmp);
    return v;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* "name42" -> 42 if the entry is exactly prefix, digits, suffix; else -1. */
static int match_indexed(const char *entry, const char *prefix, const char *suffix) {
    size_t pl = strlen(prefix);
    if (strncmp(entry, prefix, pl) != 0 || !isdigit((unsigned char)entry[pl])) return -1;
    char *end;
    long idx = strtol(entry + pl, &end, 10);
    if (strcmp(end, suffix) != 0 || idx < 0 || idx > 255) return -1;
    return (int)idx;
}

/* ---------------------------------------------------------------- child processes */

/* Runs prog (PATH lookup) with argv; stdout -> a pipe whose read end is returned in *fd_out
 * (non-blocking), stdin/stderr -> /dev/null. Returns the pid or -1 with err. */
static pid_t spawn_reader(const char *prog, char *const argv[], int *fd_out, char *err, size_t errlen) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) { msgf(err, errlen, "pipe: %s", strerror(errno)); return -1; }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    /* Its own process group, so a shell's children go too when we kill it. */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, prog, &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        msgf(err, errlen, "cannot run %s: %s", prog, strerror(rc));
        return -1;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    *fd_out = p[0];
    return pid;
}

static void reap(pid_t pid, bool kill_first, int *status) {
    if (pid <= 0) return;
    if (kill_first) kill(-pid, SIGKILL); /* the whole group (see spawn_reader) */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (status) *status = st;
}

/* Runs `prog arg` to completion (timeout_s), capturing stdout into out. Returns 0 or -1 with err. */
static int run_capture(const char *prog, const char *arg, char *out, size_t outlen, double timeout_s, char *err,
                       size_t errlen) {
    char *argv[3] = { (char *)prog, (char *)arg, NULL };
    int fd;
    pid_t pid = spawn_reader(prog, argv, &fd, err, errlen);
    if (pid < 0) return -1;
    size_t len = 0;
    double deadline = mono_s() + timeout_s;
    bool eof = false;
    while (!eof) {
        double left = deadline - mono_s();
        if (left <= 0) break;
        struct pollfd pfd = { fd, POLLIN, 0 };
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) break;
        char chunk[512];
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) { eof = true; break; }
        size_t take = (size_t)r;
        if (len + take >= outlen) take = outlen - 1 - len;
        memcpy(out + len, chunk, take);
        len += take;
    }
    out[len] = 0;
    close(fd);
    int st = 0;
    reap(pid, !eof, &st);
    if (!eof) { msgf(err, errlen, "%s %s: no answer within %.1f s", prog, arg, timeout_s); return -1; }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFEXITED(st) && WEXITSTATUS(st) == 127) msgf(err, errlen, "%s: command not found", prog);
        else msgf(err, errlen, "%s %s failed (status %d)", prog, arg, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    return 0;
}

/* Whether prog can be executed: a path that is executable, or a name found on PATH. */
static bool program_exists(const char *prog) {
    if (!prog[0]) return false;
    if (strchr(prog, '/')) return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path) return false;
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t dl = colon ? (size_t)(colon - path) : strlen(path);
        char full[PATH_LEN];
        if (dl > 0 && pathf(full, sizeof full, "%.*s/%s", (int)dl, path, prog) && access(full, X_OK) == 0) return true;
        if (!colon) break;
        path = colon + 1;
    }
    return false;
}

/* ---------------------------------------------------------------- Raspberry Pi firmware */

/* The firmware's "gencmd" through the mailbox property interface, the way vcgencmd does it:
 * u32 words [total bytes, 0 (request), tag 0x00030080, value buffer bytes, 0, 0 (gencmd error),
 * command text at byte 24 ..., 0 (end tag)]. On success word 1 is 0x80000000, word 5 the
 * command's error code and the reply text replaces the command at byte 24. */
#define VC_TAG_GENCMD 0x00030080u
#define VC_RESPONSE_OK 0x80000000u

static int mailbox_gencmd_sized(int fd, const char *cmd, size_t text_bytes, char *out, size_t outlen, char *err,
                                size_t errlen) {
    size_t n_words = 6 + text_bytes / 4 + 1;
    uint32_t *w = calloc(n_words, sizeof *w);
    if (!w) { msgf(err, errlen, "out of memory"); return -1; }
    w[0] = (uint32_t)(n_words * sizeof *w);
    w[1] = 0;
    w[2] = VC_TAG_GENCMD;
    w[3] = (uint32_t)text_bytes;
    size_t cl = strlen(cmd);
    if (cl + 1 > text_bytes) { free(w); msgf(err, errlen, "command too long"); return -1; }
    memcpy((char *)w + 24, cmd, cl + 1);
    int rc = -1;
    /* _IOWR(100, 0, char *): 0xC0086400 for 64-bit processes, 0xC0046400 for 32-bit ones. */
    if (ioctl(fd, _IOWR(100, 0, char *), w) < 0) {
        msgf(err, errlen, "mailbox ioctl: %s", strerror(errno));
    } else if (w[1] != VC_RESPONSE_OK) {
        msgf(err, errlen, "firmware rejected the mailbox request (0x%08x)", (unsigned)w[1]);
    } else if (w[5] != 0) {
        msgf(err, errlen, "firmware: '%s' failed (error %u)", cmd, (unsigned)w[5]);
    } else {
        const char *text = (const char *)w + 24;
        size_t tl = strnlen(text, text_bytes);
        if (tl >= outlen) tl = outlen - 1;
        memcpy(out, text, tl);
        out[tl] = 0;
        rc = 0;
    }
    free(w);
    return rc;
}

/* Current vcgencmd uses a 4 KiB text buffer; older firmware documents 1 KiB (power.md). */
static int mailbox_gencmd(int fd, const char *cmd, char *out, size_t outlen, char *err, size_t errlen) {
    if (mailbox_gencmd_sized(fd, cmd, 4096, out, outlen, err, errlen) == 0) return 0;
    return mailbox_gencmd_sized(fd, cmd, 1000, out, outlen, err, errlen);
}

int power_parse_pmic(const char *text, double *sum_w, double *ext5v_v) {
    enum { MAX_RAILS = 48 };
    struct { char name[32]; double amps, volts; bool has_a, has_v; } rails[MAX_RAILS];
    int n = 0;
    *sum_w = 0.0;
    *ext5v_v = NAN;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        char line[160];
        if (ll >= sizeof line) ll = sizeof line - 1;
        memcpy(line, p, ll);
        line[ll] = 0;
        p += eol ? ll + 1 : ll;
        if (eol && p[-1] != '\n') { /* a line longer than the buffer: skip the rest of it */
            const char *e2 = strchr(p, '\n');
            p = e2 ? e2 + 1 : p + strlen(p);
        }
        /* "   VDD_CORE_A current(7)=6.22421000A" / "  EXT5V_V volt(24)=5.09066000V" */
        char name[64], kind[16];
        int chan;
        double value;
        char unit;
        if (sscanf(line, " %63s %15[a-z](%d)=%lf%c", name, kind, &chan, &value, &unit) != 5) continue;
        size_t nl = strlen(name);
        if (nl < 3 || name[nl - 2] != '_' || !isfinite(value)) continue;
        char suffix = name[nl - 1];
        bool is_current = strcmp(kind, "current") == 0 && suffix == 'A' && unit == 'A';
        bool is_voltage = strcmp(kind, "volt") == 0 && suffix == 'V' && unit == 'V';
        if (!is_current && !is_voltage) continue;
        name[nl - 2] = 0;
        if (is_voltage && strcmp(name, "EXT5V") == 0) *ext5v_v = value;
        int r = 0;
        while (r < n && strcmp(rails[r].name, name) != 0) r++;
        if (r == n) {
            if (n == MAX_RAILS || strlen(name) >= sizeof rails[0].name) continue;
            memcpy(rails[n].name, name, strlen(name) + 1); /* length checked above */
            rails[n].has_a = rails[n].has_v = false;
            n++;
        }
        if (is_current) { rails[r].amps = value; rails[r].has_a = true; }
        else { rails[r].volts = value; rails[r].has_v = true; }
    }
    int paired = 0;
    for (int r = 0; r < n; r++) {
        if (!rails[r].has_a || !rails[r].has_v) continue;
        *sum_w += rails[r].amps * rails[r].volts;
        paired++;
    }
    return paired;
}

int power_parse_throttled(const char *text, uint32_t *flags) {
    const char *p = strstr(text, "throttled=");
    p = p ? p + strlen("throttled=") : text;
    while (isspace((unsigned char)*p)) p++;
    char *end;
    errno = 0;
    unsigned long v = strtoul(p, &end, 16);
    if (end == p || errno || v > 0xFFFFFFFFul) return -1;
    *flags = (uint32_t)v;
    return 0;
}

typedef struct pmic_state {
    int vcio_fd;          /* >= 0: mailbox; else vcgencmd */
    char vcgencmd[256];
    double timeout_s;
    int rails;            /* paired rails in the last reply */
    char text[4096];
} pmic_state;

static int pmic_read(power_source *src, power_reading *out, char *err, size_t errlen) {
    pmic_state *st = src->state;
    char e[160] = "";
    int rc = st->vcio_fd >= 0 ? mailbox_gencmd(st->vcio_fd, "pmic_read_adc", st->text, sizeof st->text, e, sizeof e)
                              : run_capture(st->vcgencmd, "pmic_read_adc", st->text, sizeof st->text, st->timeout_s, e,
                                            sizeof e);
    if (rc != 0) { msgf(err, errlen, "pmic: %s", e); return -1; }
    double sum, ext5v;
    int rails = power_parse_pmic(st->text, &sum, &ext5v);
    if (rails == 0) { msgf(err, errlen, "pmic: no current/voltage rail pairs in the pmic_read_adc reply"); return -1; }
    st->rails = rails;
    out->is_energy = false;
    out->watts = sum;
    if (isfinite(ext5v)) msgf(out->detail, sizeof out->detail, "rails=%d sum=%.3fW ext5v=%.3fV", rails, sum, ext5v);
    else msgf(out->detail, sizeof out->detail, "rails=%d sum=%.3fW", rails, sum);
    return 0;
}

static void pmic_close(power_source *src) {
    pmic_state *st = src->state;
    if (st && st->vcio_fd >= 0) close(st->vcio_fd);
    free(st);
    src->state = NULL;
}

/* method: 0 = mailbox then vcgencmd, 1 = mailbox only, 2 = vcgencmd only. */
static int pmic_open(const power_config *c, int method, power_source *src, char *err, size_t errlen) {
    pmic_state *st = calloc(1, sizeof *st);
    if (!st) { msgf(err, errlen, "out of memory"); return -1; }
    st->vcio_fd = -1;
    st->timeout_s = c->read_timeout_s > 0 ? c->read_timeout_s : 1.0;
    snprintf(st->vcgencmd, sizeof st->vcgencmd, "%s", c->vcgencmd);
    src->state = st;
    src->read = pmic_read;
    src->close = pmic_close;
    /* Rail sum -> board watts: the published Pi 5 fit unless --power-cal says otherwise. */
    src->cal_on = true;
    src->cal_a = c->cal_set ? c->cal_a : POWER_PMIC_DEFAULT_CAL_A;
    src->cal_b = c->cal_set ? c->cal_b : POWER_PMIC_DEFAULT_CAL_B;
    power_reading probe;
    char e1[160] = "", e2[160] = "";
    if (method != 2) {
        st->vcio_fd = open(c->vcio_path, O_RDWR | O_CLOEXEC);
        if (st->vcio_fd < 0) msgf(e1, sizeof e1, "%s: %s", c->vcio_path, strerror(errno));
        else if (pmic_read(src, &probe, e1, sizeof e1) == 0) {
            msgf(src->name, sizeof src->name, "pmic (mailbox %s, %d rails, W = %g*sum + %g)", c->vcio_path, st->rails,
                 src->cal_a, src->cal_b);
            return 0;
        } else {
            close(st->vcio_fd);
            st->vcio_fd = -1;
        }
    }
    if (method != 1) {
        if (!program_exists(c->vcgencmd)) msgf(e2, sizeof e2, "%s not found", c->vcgencmd);
        else if (pmic_read(src, &probe, e2, sizeof e2) == 0) {
            msgf(src->name, sizeof src->name, "pmic (%s, %d rails, W = %g*sum + %g)", c->vcgencmd, st->rails,
                 src->cal_a, src->cal_b);
            src->uses_vcgencmd = true;
            return 0;
        }
    }
    msgf(err, errlen, "pmic unavailable: %s%s%s", e1, e1[0] && e2[0] ? "; " : "", e2);
    pmic_close(src);
    memset(src, 0, sizeof *src);
    return -1;
}

/* ---------------------------------------------------------------- hwmon */

enum { HW_POWER, HW_ENERGY, HW_INCURR };
#define HW_MAX_CHANNELS 8

typedef struct hwmon_state {
    int kind;
    int n;
    char value[HW_MAX_CHANNELS][PATH_LEN]; /* power/energy file, or the voltage (in*) file */
    char curr[HW_MAX_CHANNELS][PATH_LEN];  /* HW_INCURR: the matching current file */
    char device[64];
} hwmon_state;

/* Labels of a current and a voltage channel that belong together: "IBUS"/"VBUS",
 * "VDD_5V_I"/"VDD_5V_V", "out current"/"out voltage" all reduce to the same key. */
static void label_key(const char *label, char *key, size_t n) {
    char t[64];
    size_t j = 0;
    for (size_t i = 0; label[i] && j + 1 < sizeof t; i++) t[j++] = (char)toupper((unsigned char)label[i]);
    t[j] = 0;
    trim_end(t);
    size_t len = strlen(t);
    static const char *const suffixes[] = { " CURRENT", " VOLTAGE", "_CURRENT", "_VOLTAGE", "_A", "_V", "_I" };
    for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
        size_t sl = strlen(suffixes[k]);
        if (len > sl && strcmp(t + len - sl, suffixes[k]) == 0) { t[len - sl] = 0; len -= sl; break; }
    }
    /* "IBUS" / "VBUS": the leading letter names the quantity, the rest the rail. */
    snprintf(key, n, "%s", len > 1 && (t[0] == 'I' || t[0] == 'V') ? t + 1 : t);
}

/* Finds the power channels of one hwmon device directory. Returns the channel count (0: none). */
static int hwmon_probe(const char *dir, hwmon_state *st, char *desc, size_t desclen) {
    int n_ent;
    char **ent = list_dir(dir, "", &n_ent);
    if (!ent) return 0;
    bool power_in[256] = { 0 }, power_avg[256] = { 0 }, energy[256] = { 0 }, volt[256] = { 0 }, curr[256] = { 0 };
    for (int i = 0; i < n_ent; i++) {
        int k;
        if ((k = match_indexed(ent[i], "power", "_input")) >= 0) power_in[k] = true;
        else if ((k = match_indexed(ent[i], "power", "_average")) >= 0) power_avg[k] = true;
        else if ((k = match_indexed(ent[i], "energy", "_input")) >= 0) energy[k] = true;
        else if ((k = match_indexed(ent[i], "in", "_input")) >= 0) volt[k] = true;
        else if ((k = match_indexed(ent[i], "curr", "_input")) >= 0) curr[k] = true;
    }
    free_list(ent, n_ent);
    st->n = 0;
    const bool *single = NULL;
    const char *stem = NULL, *suffix = "_input";
    if (memchr(power_in, true, sizeof power_in)) { single = power_in; stem = "power"; st->kind = HW_POWER; }
    else if (memchr(power_avg, true, sizeof power_avg)) { single = power_avg; stem = "power"; suffix = "_average"; st->kind = HW_POWER; }
    else if (memchr(energy, true, sizeof energy)) { single = energy; stem = "energy"; st->kind = HW_ENERGY; }
    if (single) {
        int first = -1;
        for (int k = 0; k < 256 && st->n < HW_MAX_CHANNELS; k++) {
            if (!single[k] || !pathf(st->value[st->n], PATH_LEN, "%s/%s%d%s", dir, stem, k, suffix)) continue;
            if (first < 0) first = k;
            st->n++;
        }
        if (st->n == 1) msgf(desc, desclen, "%s%d%s", stem, first, suffix);
        else msgf(desc, desclen, "%d x %s*%s", st->n, stem, suffix);
        return st->n;
    }
    /* in/curr pairs: by label when the current channel has one that matches a voltage label
     * (PowerZ: curr1 "IBUS" with in0 "VBUS"), else by index (INA219/226/3221: curr1 with in1;
     * in0 of an INA2xx is the shunt voltage). */
    st->kind = HW_INCURR;
    int first_v = -1, first_c = -1;
    for (int c = 0; c < 256 && st->n < HW_MAX_CHANNELS; c++) {
        if (!curr[c]) continue;
        int v = -1;
        char path[PATH_LEN], label[64], ckey[64], vkey[64];
        if (pathf(path, sizeof path, "%s/curr%d_label", dir, c) && read_text(path, label, sizeof label) > 0) {
            label_key(label, ckey, sizeof ckey);
            for (int k = 0; k < 256 && v < 0; k++) {
                if (!volt[k] || !pathf(path, sizeof path, "%s/in%d_label", dir, k) ||
                    read_text(path, label, sizeof label) <= 0)
                    continue;
                label_key(label, vkey, sizeof vkey);
                if (strcmp(ckey, vkey) == 0) v = k;
            }
        }
        if (v < 0 && volt[c]) v = c;
        if (v < 0) continue;
        if (!pathf(st->value[st->n], PATH_LEN, "%s/in%d_input", dir, v) ||
            !pathf(st->curr[st->n], PATH_LEN, "%s/curr%d_input", dir, c))
            continue;
        if (first_v < 0) { first_v = v; first_c = c; }
        st->n++;
    }
    if (st->n == 1) msgf(desc, desclen, "in%d_input x curr%d_input", first_v, first_c);
    else if (st->n > 1) msgf(desc, desclen, "%d x in*_input x curr*_input", st->n);
    return st->n;
}

static int hwmon_read(power_source *src, power_reading *out, char *err, size_t errlen) {
    hwmon_state *st = src->state;
    double total = 0.0, v0 = 0.0, a0 = 0.0;
    for (int i = 0; i < st->n; i++) {
        long long raw, raw_c;
        if (read_ll(st->value[i], &raw) != 0) {
            msgf(err, errlen, "hwmon %s: cannot read %s: %s", st->device, st->value[i], strerror(errno));
            return -1;
        }
        if (st->kind == HW_INCURR) {
            if (read_ll(st->curr[i], &raw_c) != 0) {
                msgf(err, errlen, "hwmon %s: cannot read %s: %s", st->device, st->curr[i], strerror(errno));
                return -1;
            }
            double volts = (double)raw * 1e-3, amps = (double)raw_c * 1e-3; /* mV, mA */
            if (i == 0) { v0 = volts; a0 = amps; }
            total += fabs(volts * amps); /* the sign of the current is only its direction */
        } else {
            total += (double)raw * 1e-6; /* uW -> W, uJ -> J */
        }
    }
    out->is_energy = st->kind == HW_ENERGY;
    if (out->is_energy) {
        out->energy_j = total;
        msgf(out->detail, sizeof out->detail, "counter=%.3fJ", total);
    } else {
        out->watts = total;
        if (st->kind == HW_INCURR) msgf(out->detail, sizeof out->detail, "%.3fV %.4fA%s", v0, a0, st->n > 1 ? " (ch1)" : "");
        else msgf(out->detail, sizeof out->detail, "%.4fW", total);
    }
    return 0;
}

static void simple_close(power_source *src) {
    free(src->state);
    src->state = NULL;
}

/* GPU drivers report the GPU's own power, not the board's: skipped unless named explicitly. */
static bool hwmon_not_board(const char *name) {
    static const char *const gpu[] = { "amdgpu", "radeon", "nouveau", "i915", "xe" };
    for (size_t i = 0; i < sizeof gpu / sizeof gpu[0]; i++)
        if (strcmp(name, gpu[i]) == 0) return true;
    return false;
}

/* want: NULL = the first device with power channels (auto), else a driver name or hwmonN. */
static int hwmon_open(const power_config *c, const char *want, power_source *src, char *err, size_t errlen) {
    char base[PATH_LEN];
    pathf(base, sizeof base, "%s/class/hwmon", c->sysfs_root);
    int n;
    char **devs = list_dir(base, "hwmon", &n);
    if (!devs) { msgf(err, errlen, "no hwmon devices (%s: %s)", base, strerror(errno)); return -1; }
    hwmon_state *st = calloc(1, sizeof *st);
    if (!st) { free_list(devs, n); msgf(err, errlen, "out of memory"); return -1; }
    char seen[200] = "";
    bool matched = false;
    int rc = -1;
    for (int i = 0; i < n && rc != 0; i++) {
        char dir[PATH_LEN], path[PATH_LEN], name[64] = "";
        if (!pathf(dir, sizeof dir, "%s/%s", base, devs[i])) continue;
        if (pathf(path, sizeof path, "%s/name", dir) && read_text(path, name, sizeof name) > 0) trim_end(name);
        if (!name[0]) snprintf(name, sizeof name, "%s", devs[i]);
        size_t sl = strlen(seen);
        if (sl + strlen(name) + 3 < sizeof seen) msgf(seen + sl, sizeof seen - sl, "%s%s", sl ? ", " : "", name);
        if (want && strcmp(want, name) != 0 && strcmp(want, devs[i]) != 0) continue;
        if (!want && hwmon_not_board(name)) continue;
        matched = true;
        char desc[96];
        if (hwmon_probe(dir, st, desc, sizeof desc) == 0) {
            if (want) msgf(err, errlen, "hwmon device %s (%s) has no power*_input, energy*_input or in*/curr* pair", name, devs[i]);
            continue;
        }
        power_reading probe;
        snprintf(st->device, sizeof st->device, "%s", name);
        src->state = st;
        src->read = hwmon_read;
        src->close = simple_close;
        char e[200];
        if (hwmon_read(src, &probe, e, sizeof e) != 0) {
            msgf(err, errlen, "%s", e);
            src->state = NULL;
            if (want) break;
            continue;
        }
        msgf(src->name, sizeof src->name, "hwmon:%s (%s)", name, desc);
        rc = 0;
    }
    free_list(devs, n);
    if (rc != 0) {
        free(st);
        src->read = NULL;
        src->close = NULL;
        if (want && !matched) msgf(err, errlen, "no hwmon device named %s (found: %s)", want, seen[0] ? seen : "none");
        else if (!want && !matched) msgf(err, errlen, "no hwmon device with power sensors (found: %s)", seen[0] ? seen : "none");
        else if (!want && !err[0]) msgf(err, errlen, "no hwmon device with power sensors (found: %s)", seen);
    }
    return rc;
}

/* ---------------------------------------------------------------- RAPL */

#define RAPL_MAX_ZONES 8

typedef struct rapl_state {
    int n;
    struct {
        char path[PATH_LEN];
        unsigned long long max_uj; /* 0: unknown, a decrease is then an error */
        unsigned long long last_uj;
        double total_j;
    } z[RAPL_MAX_ZONES];
    bool primed;
} rapl_state;

static int read_ull(const char *path, unsigned long long *v) {
    char b[64];
    if (read_text(path, b, sizeof b) < 0) return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(b, &end, 10);
    if (end == b || errno || b[0] == '-') { errno = EINVAL; return -1; }
    *v = x;
    return 0;
}

static int rapl_read(power_source *src, power_reading *out, char *err, size_t errlen) {
    rapl_state *st = src->state;
    unsigned long long now[RAPL_MAX_ZONES];
    for (int i = 0; i < st->n; i++) {
        if (read_ull(st->z[i].path, &now[i]) != 0) {
            msgf(err, errlen, "rapl: cannot read %s: %s", st->z[i].path, strerror(errno));
            return -1;
        }
    }
    double total = 0.0;
    for (int i = 0; i < st->n; i++) {
        if (st->primed) {
            unsigned long long last = st->z[i].last_uj, cur = now[i], delta;
            if (cur >= last) delta = cur - last;
            else if (st->z[i].max_uj >= last) delta = (st->z[i].max_uj - last) + cur; /* wrapped once */
            else { msgf(err, errlen, "rapl: %s went backwards", st->z[i].path); return -1; }
            st->z[i].total_j += (double)delta * 1e-6;
        }
        st->z[i].last_uj = now[i];
        total += st->z[i].total_j;
    }
    st->primed = true;
    out->is_energy = true;
    out->energy_j = total;
    msgf(out->detail, sizeof out->detail, "counter=%.3fJ", total);
    return 0;
}

static int rapl_open(const power_config *c, const char *want, power_source *src, char *err, size_t errlen) {
    char base[PATH_LEN];
    pathf(base, sizeof base, "%s/class/powercap", c->sysfs_root);
    int n;
    char **zones = list_dir(base, "intel-rapl:", &n);
    if (!zones || n == 0) {
        free_list(zones, n);
        msgf(err, errlen, "no RAPL zones (%s/intel-rapl:*)", base);
        return -1;
    }
    rapl_state *st = calloc(1, sizeof *st);
    if (!st) { free_list(zones, n); msgf(err, errlen, "out of memory"); return -1; }
    /* Choice: the named zone; else psys (whole platform) if present; else every package plus
     * the DRAM zones (DRAM energy is not part of the package counter). */
    char names[64][32];
    bool top[64];
    int nz = n < 64 ? n : 64;
    int psys = -1;
    for (int i = 0; i < nz; i++) {
        char path[PATH_LEN];
        names[i][0] = 0;
        if (pathf(path, sizeof path, "%s/%s/name", base, zones[i]) && read_text(path, names[i], sizeof names[i]) > 0)
            trim_end(names[i]);
        top[i] = strchr(zones[i] + strlen("intel-rapl:"), ':') == NULL;
        if (top[i] && strcmp(names[i], "psys") == 0 && psys < 0) psys = i;
    }
    char label[120] = "";
    for (int i = 0; i < nz && st->n < RAPL_MAX_ZONES; i++) {
        bool use;
        if (want) use = strcmp(want, names[i]) == 0 || strcmp(want, zones[i]) == 0;
        else if (psys >= 0) use = i == psys;
        else use = (top[i] && strncmp(names[i], "package", 7) == 0) || strcmp(names[i], "dram") == 0;
        if (!use) continue;
        char path[PATH_LEN];
        if (!pathf(st->z[st->n].path, PATH_LEN, "%s/%s/energy_uj", base, zones[i])) continue;
        if (pathf(path, sizeof path, "%s/%s/max_energy_range_uj", base, zones[i]) && read_ull(path, &st->z[st->n].max_uj) != 0)
            st->z[st->n].max_uj = 0;
        size_t ll = strlen(label);
        msgf(label + ll, sizeof label - ll, "%s%s", ll ? "+" : "", names[i][0] ? names[i] : zones[i]);
        st->n++;
    }
    free_list(zones, n);
    if (st->n == 0) {
        free(st);
        if (want) msgf(err, errlen, "no RAPL zone named %s", want);
        else msgf(err, errlen, "no RAPL package or psys zone");
        return -1;
    }
    src->state = st;
    src->read = rapl_read;
    src->close = simple_close;
    power_reading probe;
    char e[200];
    if (rapl_read(src, &probe, e, sizeof e) != 0) {
        if (strstr(e, "Permission denied"))
            msgf(err, errlen, "%s (energy_uj is root-only on many kernels: run as root or adjust its permissions)", e);
        else msgf(err, errlen, "%s", e);
        free(st);
        src->state = NULL;
        src->read = NULL;
        src->close = NULL;
        return -1;
    }
    msgf(src->name, sizeof src->name, "rapl (%s)", label);
    return 0;
}

/* ---------------------------------------------------------------- UM34C / UM25C */

static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* First two bytes of a frame: 0x0d4c UM34C, 0x0963 UM24C (UM34C units), 0x09c9 UM25C. */
static int um_header_model(unsigned h) {
    if (h == 0x0d4c || h == 0x0963) return POWER_UM34C;
    if (h == 0x09c9) return POWER_UM25C;
    return 0;
}

static const char *um_model_name(int m) { return m == POWER_UM25C ? "UM25C" : "UM34C"; }

void power_um_encode(uint8_t f[POWER_UM_FRAME], int model, double volts, double amps, double watts) {
    memset(f, 0, POWER_UM_FRAME);
    bool fine = model == POWER_UM25C;
    put16(f, fine ? 0x09c9 : 0x0d4c);
    put16(f + 2, (unsigned)lround(volts * (fine ? 1000.0 : 100.0)));
    put16(f + 4, (unsigned)lround(amps * (fine ? 10000.0 : 1000.0)));
    put32(f + 6, (uint32_t)lround(watts * 1000.0));
    put16(f + 10, 25);           /* degC */
    put16(f + 12, 77);           /* degF */
    put16(f + 110, 10);          /* record threshold 0.10 A */
    put32(f + 122, 99999);       /* load resistance 9999.9 ohm */
    put16(f + 126, 2);           /* current screen */
    f[128] = 0x80;
    f[129] = 0x68;
}

long power_um_scan(const uint8_t *buf, size_t len, int model, double *volts, double *amps, double *watts,
                   int *found_model, size_t *keep_from) {
    *keep_from = len > 0 ? len - 1 : 0; /* the last byte may start a header */
    for (size_t off = 0; off + 1 < len; off++) {
        int hm = um_header_model(be16(buf + off));
        if (!hm) continue;
        if (len - off < POWER_UM_FRAME) { *keep_from = off; return -1; }
        const uint8_t *f = buf + off;
        bool fine = hm == POWER_UM25C;
        double v = be16(f + 2) / (fine ? 1000.0 : 100.0);
        double a = be16(f + 4) / (fine ? 10000.0 : 1000.0);
        double w = be32(f + 6) / 1000.0;
        /* Garbage that happens to start like a header fails these: meter ranges (<= 30 V,
         * <= 5 A) with margin, and the power field must agree with V x A. */
        double va = v * a;
        bool plausible = v <= 40.0 && a <= 6.0 && w <= 250.0 && fabs(w - va) <= 0.05 * fmax(w, va) + 0.05;
        if (!plausible) continue;
        if (model != POWER_UM_AUTO && hm != model) { *found_model = hm; continue; }
        *found_model = hm;
        *volts = v;
        *amps = a;
        *watts = w;
        return (long)off;
    }
    return -1;
}

typedef struct um_state {
    int fd;
    int model;
    char path[256];
    double timeout_s;
    uint8_t buf[1024];
} um_state;

static int um_request(um_state *st, double *v, double *a, double *w, char *err, size_t errlen) {
    /* Drop whatever a previous, late reply left behind. */
    tcflush(st->fd, TCIFLUSH);
    for (int i = 0; i < 16 && read(st->fd, st->buf, sizeof st->buf) > 0; i++) {}
    double deadline = mono_s() + st->timeout_s;
    const uint8_t cmd = 0xF0;
    for (;;) {
        ssize_t r = write(st->fd, &cmd, 1);
        if (r == 1) break;
        if (r < 0 && errno != EAGAIN && errno != EINTR) {
            msgf(err, errlen, "%s: write: %s", st->path, strerror(errno));
            return -1;
        }
        double left = deadline - mono_s();
        if (left <= 0) { msgf(err, errlen, "%s: write timed out", st->path); return -1; }
        struct pollfd pfd = { st->fd, POLLOUT, 0 };
        poll(&pfd, 1, (int)(left * 1000) + 1);
    }
    size_t len = 0, received = 0;
    int other_model = 0;
    for (;;) {
        double left = deadline - mono_s();
        if (left <= 0) break;
        struct pollfd pfd = { st->fd, POLLIN, 0 };
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) break;
        ssize_t r = read(st->fd, st->buf + len, sizeof st->buf - len);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
            if (pfd.revents & (POLLHUP | POLLERR)) {
                msgf(err, errlen, "%s: meter disconnected", st->path);
                return -1;
            }
            continue;
        }
        len += (size_t)r;
        received += (size_t)r;
        size_t keep;
        int found = 0;
        long off = power_um_scan(st->buf, len, st->model, v, a, w, &found, &keep);
        if (off >= 0) {
            if (st->model == POWER_UM_AUTO) st->model = found;
            return 0;
        }
        if (found) other_model = found;
        if (keep > 0) {
            memmove(st->buf, st->buf + keep, len - keep);
            len -= keep;
        }
        if (len == sizeof st->buf) len = 0; /* cannot happen with keep logic, but never overflow */
    }
    if (other_model)
        msgf(err, errlen, "%s: the meter answers as a %s; use --power %s:%s", st->path, um_model_name(other_model),
             other_model == POWER_UM25C ? "um25c" : "um34c", st->path);
    else
        msgf(err, errlen, "%s: no valid %s reply within %.2f s (%zu bytes received)", st->path,
             st->model == POWER_UM_AUTO ? "UM" : um_model_name(st->model), st->timeout_s, received);
    return -1;
}

static int um_read(power_source *src, power_reading *out, char *err, size_t errlen) {
    um_state *st = src->state;
    double v, a, w;
    if (um_request(st, &v, &a, &w, err, errlen) != 0) return -1;
    out->is_energy = false;
    out->watts = w;
    msgf(out->detail, sizeof out->detail, "%.3fV %.4fA", v, a);
    return 0;
}

static void um_close(power_source *src) {
    um_state *st = src->state;
    if (st && st->fd >= 0) close(st->fd);
    free(st);
    src->state = NULL;
}

static int um_open(const power_config *c, int model, const char *path, power_source *src, char *err, size_t errlen) {
    um_state *st = calloc(1, sizeof *st);
    if (!st) { msgf(err, errlen, "out of memory"); return -1; }
    snprintf(st->path, sizeof st->path, "%s", path);
    st->model = model;
    st->timeout_s = c->read_timeout_s > 0 ? c->read_timeout_s : 1.0;
    st->fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (st->fd < 0) {
        msgf(err, errlen, "%s: %s", path, strerror(errno));
        free(st);
        return -1;
    }
    /* 9600 8N1, raw (no echo, no CR/LF translation, no flow control). Harmless on RFCOMM. */
    struct termios t;
    if (tcgetattr(st->fd, &t) == 0) {
        cfmakeraw(&t);
        cfsetispeed(&t, B9600);
        cfsetospeed(&t, B9600);
        t.c_cflag &= ~(tcflag_t)(CSTOPB | PARENB | CRTSCTS | CSIZE);
        t.c_cflag |= CS8 | CLOCAL | CREAD;
        t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        tcsetattr(st->fd, TCSANOW, &t);
    }
    src->state = st;
    src->read = um_read;
    src->close = um_close;
    power_reading probe;
    if (um_read(src, &probe, err, errlen) != 0) {
        um_close(src);
        src->read = NULL;
        src->close = NULL;
        return -1;
    }
    msgf(src->name, sizeof src->name, "%s:%s", st->model == POWER_UM25C ? "um25c" : "um34c", path);
    return 0;
}

/* ---------------------------------------------------------------- cmd: and file: */

typedef struct cmd_state {
    char command[256];
    pid_t pid;
    int fd;
    char line[256];
    size_t line_len;
    double last_w, last_t;
    bool have;
    double timeout_s, stale_s;
    char last_text[64];
} cmd_state;

/* Ends the command and its process group (a one-shot command has already exited: harmless). */
static void cmd_stop_child(cmd_state *st) {
    if (st->fd >= 0) close(st->fd);
    st->fd = -1;
    if (st->pid > 0) reap(st->pid, true, NULL);
    st->pid = 0;
    st->line_len = 0;
}

/* Reads what the command printed; every complete line holding a number updates the reading.
 * Returns true if a new reading arrived. Sets *eof when the command closed its output. */
static bool cmd_drain(cmd_state *st, bool *eof) {
    bool fresh = false;
    char chunk[256];
    for (;;) {
        ssize_t r = read(st->fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fresh; /* EAGAIN: nothing more for now */
        if (r == 0) { *eof = true; return fresh; }
        for (ssize_t i = 0; i < r; i++) {
            char ch = chunk[i];
            if (ch != '\n') {
                if (st->line_len + 1 < sizeof st->line) st->line[st->line_len++] = ch;
                continue;
            }
            st->line[st->line_len] = 0;
            st->line_len = 0;
            double w;
            msgf(st->last_text, sizeof st->last_text, "%s", st->line);
            if (parse_watts(st->line, &w) == 0) {
                st->last_w = w;
                st->last_t = mono_s();
                st->have = true;
                fresh = true;
            }
        }
    }
}

static int cmd_read(power_source *src, power_reading *out, char *err, size_t errlen) {
    cmd_state *st = src->state;
    bool need_fresh = false;
    if (st->pid <= 0) {
        char *argv[] = { "/bin/sh", "-c", st->command, NULL };
        char e[160];
        st->pid = spawn_reader("/bin/sh", argv, &st->fd, e, sizeof e);
        if (st->pid < 0) { st->pid = 0; msgf(err, errlen, "cmd: %s", e); return -1; }
        need_fresh = true; /* a one-shot command is re-run per sample: wait for its answer */
    }
    double deadline = mono_s() + (need_fresh ? st->timeout_s : 0.0);
    bool eof = false, fresh = false;
    for (;;) {
        fresh |= cmd_drain(st, &eof);
        if (eof || (need_fresh && fresh)) break;
        double left = deadline - mono_s();
        if (left <= 0) break;
        struct pollfd pfd = { st->fd, POLLIN, 0 };
        if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR) break;
    }
    if (eof) cmd_stop_child(st); /* one-shot command done (or a streaming one died): rerun next time */
    if (need_fresh && !fresh) {
        if (!eof) cmd_stop_child(st);
        if (eof) msgf(err, errlen, "cmd: the command ended without printing a number (last line: '%s')", st->last_text);
        else msgf(err, errlen, "cmd: no number printed within %.2f s (last line: '%s')", st->timeout_s, st->last_text);
        return -1;
    }
    if (!st->have || mono_s() - st->last_t > st->stale_s) {
        if (st->have) msgf(err, errlen, "cmd: no new reading for %.1f s", mono_s() - st->last_t);
        else msgf(err, errlen, "cmd: the command printed no number (last line: '%s')", st->last_text);
        return -1;
    }
    out->is_energy = false;
    out->watts = st->last_w;
    msgf(out->detail, sizeof out->detail, "%s", fresh ? "cmd" : "cmd (held)");
    return 0;
}

static void cmd_close(power_source *src) {
    cmd_state *st = src->state;
    if (st) cmd_stop_child(st);
    free(st);
    src->state = NULL;
}

static int cmd_open(const power_config *c, const char *command, power_source *src, char *err, size_t errlen) {
    cmd_state *st = calloc(1, sizeof *st);
    if (!st) { msgf(err, errlen, "out of memory"); return -1; }
    size_t cl = strlen(command);
    if (cl >= 2 && ((command[0] == '"' && command[cl - 1] == '"') || (command[0] == '\'' && command[cl - 1] == '\''))) {
        command++;
        cl -= 2;
    }
    if (cl == 0 || cl >= sizeof st->command) {
        free(st);
        msgf(err, errlen, "cmd: %s command", cl ? "too long a" : "empty");
        return -1;
    }
    memcpy(st->command, command, cl);
    st->command[cl] = 0;
    st->fd = -1;
    st->timeout_s = c->read_timeout_s > 0 ? c->read_timeout_s : 1.0;
    /* A streaming command may print slower than we sample: hold its last value this long. */
    st->stale_s = fmax(2.0, 3.0 * st->timeout_s);
    src->state = st;
    src->read = cmd_read;
    src->close = cmd_close;
    power_reading probe;
    if (cmd_read(src, &probe, err, errlen) != 0) {
        cmd_close(src);
        src->read = NULL;
        src->close = NULL;
        return -1;
    }
    msgf(src->name, sizeof src->name, "cmd:%s", st->command);
    return 0;
}

typedef struct file_state { char path[512]; } file_state;

static int file_read(power_source *src, power_reading *out, char *err, size_t errlen) {
    file_state *st = src->state;
    char text[128];
    if (read_text(st->path, text, sizeof text) < 0) {
        msgf(err, errlen, "file %s: %s", st->path, strerror(errno));
        return -1;
    }
    double w;
    if (parse_watts(text, &w) != 0) {
        trim_end(text);
        msgf(err, errlen, "file %s: '%.40s' is not a number of watts", st->path, text);
        return -1;
    }
    out->is_energy = false;
    out->watts = w;
    out->detail[0] = 0;
    return 0;
}

static int file_open(const char *path, power_source *src, char *err, size_t errlen) {
    file_state *st = calloc(1, sizeof *st);
    if (!st) { msgf(err, errlen, "out of memory"); return -1; }
    if (!path[0] || strlen(path) >= sizeof st->path) { free(st); msgf(err, errlen, "file: bad path"); return -1; }
    snprintf(st->path, sizeof st->path, "%s", path);
    src->state = st;
    src->read = file_read;
    src->close = simple_close;
    power_reading probe;
    if (file_read(src, &probe, err, errlen) != 0) {
        simple_close(src);
        src->read = NULL;
        src->close = NULL;
        return -1;
    }
    msgf(src->name, sizeof src->name, "file:%s", path);
    return 0;
}

/* ---------------------------------------------------------------- dispatch */

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int power_source_open(const power_config *c, power_source *src, char *note, size_t notelen, char *err,
                      size_t errlen) {
    memset(src, 0, sizeof *src);
    if (note && notelen) note[0] = 0;
    if (err && errlen) err[0] = 0;
    const char *s = c->source;
    int rc;
    if (strcmp(s, "none") == 0) {
        msgf(note, notelen, "power measurement disabled (--power none)");
        return 0;
    } else if (strcmp(s, "auto") == 0 || !s[0]) {
        /* Order: Pi PMIC, hwmon, RAPL, a UM meter on the usual RFCOMM device. Nothing found is
         * not an error: energy is then reported as unavailable. */
        char e1[200] = "", e2[200] = "", e3[200] = "", e4[200] = "";
        rc = pmic_open(c, 0, src, e1, sizeof e1);
        if (rc != 0) rc = hwmon_open(c, NULL, src, e2, sizeof e2);
        if (rc != 0) rc = rapl_open(c, NULL, src, e3, sizeof e3);
        if (rc != 0) {
            if (access("/dev/rfcomm0", F_OK) == 0) rc = um_open(c, POWER_UM_AUTO, "/dev/rfcomm0", src, e4, sizeof e4);
            else msgf(e4, sizeof e4, "/dev/rfcomm0 absent");
        }
        if (rc != 0) {
            msgf(note, notelen, "no power sensor found (%s; %s; %s; %s)", e1, e2, e3, e4);
            memset(src, 0, sizeof *src);
            return 0;
        }
    } else if (strcmp(s, "pmic") == 0) {
        rc = pmic_open(c, 0, src, err, errlen);
    } else if (strcmp(s, "pmic:mailbox") == 0) {
        rc = pmic_open(c, 1, src, err, errlen);
    } else if (strcmp(s, "pmic:vcgencmd") == 0) {
        rc = pmic_open(c, 2, src, err, errlen);
    } else if (strcmp(s, "hwmon") == 0) {
        rc = hwmon_open(c, NULL, src, err, errlen);
    } else if (has_prefix(s, "hwmon:")) {
        rc = hwmon_open(c, s + 6, src, err, errlen);
    } else if (strcmp(s, "rapl") == 0) {
        rc = rapl_open(c, NULL, src, err, errlen);
    } else if (has_prefix(s, "rapl:")) {
        rc = rapl_open(c, s + 5, src, err, errlen);
    } else if (has_prefix(s, "um34c") || has_prefix(s, "um25c")) {
        int model = has_prefix(s, "um25c") ? POWER_UM25C : POWER_UM34C;
        const char *path = s[5] == ':' && s[6] ? s + 6 : s[5] == 0 ? "/dev/rfcomm0" : NULL;
        if (!path) { msgf(err, errlen, "bad meter source '%s' (expected um34c:/dev/rfcomm0)", s); return -1; }
        rc = um_open(c, model, path, src, err, errlen);
    } else if (has_prefix(s, "cmd:")) {
        rc = cmd_open(c, s + 4, src, err, errlen);
    } else if (has_prefix(s, "file:")) {
        rc = file_open(s + 5, src, err, errlen);
    } else {
        msgf(err, errlen, "unknown power source '%s' (expected auto, none, pmic, hwmon[:NAME], rapl[:ZONE], "
                          "um34c:DEV, um25c:DEV, cmd:COMMAND or file:PATH)", s);
        return -1;
    }
    if (rc != 0) return -1;
    /* pmic sets its own calibration (with a default); the others only on request. */
    if (c->cal_set && !src->cal_on) {
        src->cal_on = true;
        src->cal_a = c->cal_a;
        src->cal_b = c->cal_b;
        size_t nl = strlen(src->name);
        msgf(src->name + nl, sizeof src->name - nl, " [W = %g*reading + %g]", src->cal_a, src->cal_b);
    }
    return 1;
}

void power_source_close(power_source *src) {
    if (src && src->close) src->close(src);
    if (src) {
        src->close = NULL;
        src->read = NULL;
    }
}

/* ---------------------------------------------------------------- temperature, MHz, throttling */

#define AUX_MAX_CPUS 64

enum { THROTTLE_NONE, THROTTLE_SYSFS, THROTTLE_MAILBOX, THROTTLE_VCGENCMD, THROTTLE_X86 };

struct power_aux {
    char temp_path[PATH_LEN];
    int n_cpus;
    char (*freq_paths)[PATH_LEN];
    int throttle_method;
    char throttle_path[PATH_LEN];  /* sysfs get_throttled */
    int vcio_fd;
    char vcgencmd[256];
    double vc_last_t;              /* vcgencmd is a process spawn: at most once a second */
    uint32_t vc_last_flags;
    bool vc_known;
    char tt_paths[2][PATH_LEN];    /* x86 thermal_throttle counters of cpu0 */
    long long tt_first, tt_last;
};

static bool readable(const char *path) {
    char b[64];
    return read_text(path, b, sizeof b) > 0;
}

static void aux_find_temp(power_aux *a, const char *root) {
    char base[PATH_LEN];
    pathf(base, sizeof base, "%s/class/thermal", root);
    int n;
    char **zones = list_dir(base, "thermal_zone", &n);
    if (!zones) return;
    /* The CPU's zone by type; else the first zone. */
    static const char *const cpu_types[] = { "cpu", "x86_pkg", "soc", "package", "tctl" };
    int pick = -1;
    for (int i = 0; i < n && pick < 0; i++) {
        char path[PATH_LEN], type[64];
        if (!pathf(path, sizeof path, "%s/%s/type", base, zones[i]) || read_text(path, type, sizeof type) <= 0) continue;
        for (char *q = type; *q; q++) *q = (char)tolower((unsigned char)*q);
        for (size_t k = 0; k < sizeof cpu_types / sizeof cpu_types[0] && pick < 0; k++)
            if (strstr(type, cpu_types[k]) && pathf(path, sizeof path, "%s/%s/temp", base, zones[i]) && readable(path))
                pick = i;
    }
    if (pick < 0 && n > 0) pick = 0;
    if (pick >= 0 && pathf(a->temp_path, sizeof a->temp_path, "%s/%s/temp", base, zones[pick]) && !readable(a->temp_path))
        a->temp_path[0] = 0;
    free_list(zones, n);
}

static void aux_find_freq(power_aux *a, const char *root) {
    char base[PATH_LEN];
    pathf(base, sizeof base, "%s/devices/system/cpu", root);
    int n;
    char **cpus = list_dir(base, "cpu", &n);
    if (!cpus) return;
    a->freq_paths = calloc(AUX_MAX_CPUS, sizeof *a->freq_paths);
    for (int i = 0; a->freq_paths && i < n && a->n_cpus < AUX_MAX_CPUS; i++) {
        if (match_indexed(cpus[i], "cpu", "") < 0) continue;
        char *p = a->freq_paths[a->n_cpus];
        if (pathf(p, PATH_LEN, "%s/%s/cpufreq/scaling_cur_freq", base, cpus[i]) && readable(p)) a->n_cpus++;
    }
    free_list(cpus, n);
}

/* The Raspberry Pi firmware driver's get_throttled attribute, e.g.
 * /sys/devices/platform/soc/soc:firmware/get_throttled (Pi 5: soc@107c000000/...:firmware). */
static bool aux_find_throttle_sysfs(power_aux *a, const char *root) {
    char base[PATH_LEN];
    pathf(base, sizeof base, "%s/devices/platform", root);
    int n;
    char **ent = list_dir(base, "", &n);
    bool found = false;
    for (int i = 0; ent && i < n && !found; i++) {
        char dir[PATH_LEN];
        if (!pathf(dir, sizeof dir, "%s/%s", base, ent[i])) continue;
        if (strstr(ent[i], "firmware") && pathf(a->throttle_path, PATH_LEN, "%s/get_throttled", dir) &&
            readable(a->throttle_path)) {
            found = true;
            break;
        }
        int m;
        char **sub = list_dir(dir, "", &m);
        for (int j = 0; sub && j < m && !found; j++)
            if (strstr(sub[j], "firmware") && pathf(a->throttle_path, PATH_LEN, "%s/%s/get_throttled", dir, sub[j]) &&
                readable(a->throttle_path))
                found = true;
        free_list(sub, m);
    }
    free_list(ent, n);
    if (!found) a->throttle_path[0] = 0;
    return found;
}

power_aux *power_aux_open(const power_config *c, bool allow_vcgencmd) {
    power_aux *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->vcio_fd = -1;
    aux_find_temp(a, c->sysfs_root);
    aux_find_freq(a, c->sysfs_root);
    char text[256], e[160];
    if (aux_find_throttle_sysfs(a, c->sysfs_root)) {
        a->throttle_method = THROTTLE_SYSFS;
    } else if ((a->vcio_fd = open(c->vcio_path, O_RDWR | O_CLOEXEC)) >= 0 &&
               mailbox_gencmd(a->vcio_fd, "get_throttled", text, sizeof text, e, sizeof e) == 0) {
        a->throttle_method = THROTTLE_MAILBOX;
    } else {
        if (a->vcio_fd >= 0) close(a->vcio_fd);
        a->vcio_fd = -1;
        char path[PATH_LEN];
        if (allow_vcgencmd) {
            a->throttle_method = THROTTLE_VCGENCMD;
            snprintf(a->vcgencmd, sizeof a->vcgencmd, "%s", c->vcgencmd);
            a->vc_last_t = -1e9;
        } else if (pathf(path, sizeof path, "%s/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count",
                         c->sysfs_root) && readable(path)) {
            a->throttle_method = THROTTLE_X86;
            snprintf(a->tt_paths[0], PATH_LEN, "%s", path);
            pathf(a->tt_paths[1], PATH_LEN, "%s/devices/system/cpu/cpu0/thermal_throttle/package_throttle_count",
                  c->sysfs_root);
            a->tt_first = -1;
        }
    }
    return a;
}

void power_aux_read(power_aux *a, power_aux_values *v) {
    v->temp_c = NAN;
    v->mhz = NAN;
    v->throttle = 0;
    v->throttle_known = false;
    if (!a) return;
    long long x;
    if (a->temp_path[0] && read_ll(a->temp_path, &x) == 0) v->temp_c = (double)x * 1e-3; /* m°C */
    for (int i = 0; i < a->n_cpus; i++)
        if (read_ll(a->freq_paths[i], &x) == 0 && !((double)x * 1e-3 <= v->mhz)) v->mhz = (double)x * 1e-3; /* kHz */
    char text[256], e[160];
    switch (a->throttle_method) {
    case THROTTLE_SYSFS:
        if (read_text(a->throttle_path, text, sizeof text) > 0 && power_parse_throttled(text, &v->throttle) == 0)
            v->throttle_known = true;
        break;
    case THROTTLE_MAILBOX:
        if (mailbox_gencmd(a->vcio_fd, "get_throttled", text, sizeof text, e, sizeof e) == 0 &&
            power_parse_throttled(text, &v->throttle) == 0)
            v->throttle_known = true;
        break;
    case THROTTLE_VCGENCMD: {
        double now = mono_s();
        if (now - a->vc_last_t >= 1.0) {
            a->vc_last_t = now;
            a->vc_known = run_capture(a->vcgencmd, "get_throttled", text, sizeof text, 1.0, e, sizeof e) == 0 &&
                          power_parse_throttled(text, &a->vc_last_flags) == 0;
        }
        v->throttle = a->vc_last_flags;
        v->throttle_known = a->vc_known;
        break;
    }
    case THROTTLE_X86: {
        long long total = 0, y;
        for (int i = 0; i < 2; i++)
            if (read_ll(a->tt_paths[i], &y) == 0) total += y;
        if (a->tt_first < 0) a->tt_first = a->tt_last = total;
        /* Map to the Pi bits: 2 = throttled now (count rose since the last sample), 18 = has occurred. */
        if (total > a->tt_last) v->throttle |= 0x4u;
        if (total > a->tt_first) v->throttle |= 0x40000u;
        a->tt_last = total;
        v->throttle_known = true;
        break;
    }
    default: break;
    }
}

void power_aux_free(power_aux *a) {
    if (!a) return;
    if (a->vcio_fd >= 0) close(a->vcio_fd);
    free(a->freq_paths);
    free(a);
}
