/* Power-related command-line options shared by llmpi-run and llmpi-bench (see power.h). */
#include "power.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void cli_err(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cli_err(char *err, size_t n, const char *fmt, ...) {
    if (!err || n == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

/* A finite number in [lo, hi] taking all of s. */
static int parse_number(const char *opt, const char *s, double lo, double hi, double *out, char *err, size_t errlen) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        cli_err(err, errlen, "invalid value '%s' for %s: expected a number", s, opt);
        return -1;
    }
    if (v < lo || v > hi) {
        cli_err(err, errlen, "value %s for %s is out of range [%g, %g]", s, opt, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static bool source_known(const char *s) {
    static const char *const exact[] = { "auto", "none", "pmic", "pmic:mailbox", "pmic:vcgencmd", "hwmon", "rapl",
                                         "um34c", "um25c" };
    static const char *const with_arg[] = { "hwmon:", "rapl:", "um34c:", "um25c:", "cmd:", "file:" };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(s, exact[i]) == 0) return true;
    for (size_t i = 0; i < sizeof with_arg / sizeof with_arg[0]; i++) {
        size_t l = strlen(with_arg[i]);
        if (strncmp(s, with_arg[i], l) == 0 && s[l]) return true;
    }
    return false;
}

int power_cli_parse(power_config *c, int argc, char **argv, int i, char *err, size_t errlen) {
    static const char *const opts[] = { "--power", "--power-cal", "--power-log", "--power-rate", "--idle-seconds",
                                        "--battery-wh", "--tokens-per-word" };
    if (i < 0 || i >= argc || !argv[i]) return 0;
    const char *arg = argv[i];
    int which = -1;
    const char *value = NULL;
    for (int k = 0; k < (int)(sizeof opts / sizeof opts[0]); k++) {
        size_t l = strlen(opts[k]);
        if (strncmp(arg, opts[k], l) != 0) continue;
        if (arg[l] == 0) { which = k; break; }
        if (arg[l] == '=') { which = k; value = arg + l + 1; break; }
    }
    if (which < 0) return 0;
    const char *opt = opts[which];
    int used = 1;
    if (!value) {
        if (i + 1 >= argc || !argv[i + 1]) {
            cli_err(err, errlen, "option %s needs a value", opt);
            return -1;
        }
        value = argv[i + 1];
        used = 2;
    }
    double v;
    switch (which) {
    case 0: /* --power */
        if (!source_known(value)) {
            cli_err(err, errlen, "unknown power source '%s' (expected auto, none, pmic, hwmon[:NAME], rapl[:ZONE], "
                                 "um34c:DEV, um25c:DEV, cmd:COMMAND or file:PATH)", value);
            return -1;
        }
        if (strlen(value) >= sizeof c->source) {
            cli_err(err, errlen, "--power value is too long");
            return -1;
        }
        snprintf(c->source, sizeof c->source, "%s", value);
        break;
    case 1: { /* --power-cal a,b */
        char *end;
        errno = 0;
        double a = strtod(value, &end);
        bool ok = end != value && *end == ',' && !errno && isfinite(a);
        double b = 0;
        if (ok) {
            const char *bs = end + 1;
            b = strtod(bs, &end);
            ok = end != bs && *end == 0 && !errno && isfinite(b);
        }
        if (!ok || a <= 0) {
            cli_err(err, errlen, "invalid value '%s' for --power-cal: expected A,B with W = A*reading + B and A > 0", value);
            return -1;
        }
        c->cal_a = a;
        c->cal_b = b;
        c->cal_set = true;
        break;
    }
    case 2: /* --power-log */
        if (!value[0] || strlen(value) >= sizeof c->log_path) {
            cli_err(err, errlen, "invalid file name for --power-log");
            return -1;
        }
        snprintf(c->log_path, sizeof c->log_path, "%s", value);
        break;
    case 3:
        if (parse_number(opt, value, 0.1, 1000, &v, err, errlen) != 0) return -1;
        c->rate_hz = v;
        break;
    case 4:
        if (parse_number(opt, value, 0, 86400, &v, err, errlen) != 0) return -1;
        c->idle_seconds = v;
        break;
    case 5:
        if (parse_number(opt, value, 1e-3, 1e6, &v, err, errlen) != 0) return -1;
        c->battery_wh = v;
        break;
    case 6:
        if (parse_number(opt, value, 1e-3, 1e3, &v, err, errlen) != 0) return -1;
        c->tokens_per_word = v;
        break;
    }
    return used;
}

const char *power_cli_usage(void) {
    return "      --power SOURCE      power sensor: auto (default), none, pmic, hwmon[:NAME], rapl[:ZONE],\n"
           "                          um34c:/dev/rfcomm0, um25c:DEV, cmd:\"COMMAND\" (prints watts), file:PATH\n"
           "      --power-cal A,B     calibrate: W = A*reading + B (pmic default 1.1451,0.5879: whole board)\n"
           "      --power-log FILE    write every power sample as CSV\n"
           "      --power-rate HZ     sampling rate (default 10)\n"
           "      --idle-seconds N    measure the static (idle) power for N s before the run\n"
           "      --battery-wh X      battery for words per battery life (default 5)\n"
           "      --tokens-per-word X tokens per word for W/BL (default 1.5)\n";
}
