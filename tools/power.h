/* Power sampler and energy metrics for the LLMPi tools (issue "tools/power").
 *
 * A background thread reads one real power sensor at a fixed rate (default 10 Hz) into a
 * preallocated ring buffer of CLOCK_MONOTONIC-stamped samples, together with the CPU
 * temperature, CPU frequency and throttling flags. Energy is integrated as it goes
 * (trapezoids between power samples; exact differences for energy counters) and split into
 * phases at the exact times the inference code marks them. Power is never estimated from CPU
 * load: without a sensor the energy figures are reported as unavailable (NaN / null / "n/a").
 *
 * Typical use in a tool (see docs/energy.md for the formulas):
 *
 *   power_config pc; power_config_default(&pc);            // then power_cli_parse() per argv entry
 *   power_sampler *ps; char err[256];
 *   if (power_sampler_create(&pc, &ps, err, sizeof err) != 0) { print err; exit 1; }
 *   if (pc.idle_seconds > 0 && power_measure_idle(ps, pc.idle_seconds) != 0)
 *       print "warning: " power_sampler_error(ps);           // static power stays unknown
 *   power_sampler_start(ps);
 *   power_sampler_mark(ps, POWER_PHASE_PROMPT);  ... prompt ...
 *   power_sampler_mark(ps, POWER_PHASE_GEN);     ... generation ...
 *   power_sampler_mark(ps, POWER_PHASE_OTHER);                // generation over
 *   power_sampler_stop(ps);                                   // joins; writes the CSV log
 *   power_report rep; power_sampler_report(ps, &rep);
 *   power_run_info run = { n_prompt, prompt_s, n_gen, gen_s };
 *   power_metrics m; power_compute_metrics(&rep, &run, pc.battery_wh, pc.tokens_per_word, &m);
 *   power_print_metrics(stderr, "llmpi-run: ", &m);          // energy lines (TPS lines are the tool's)
 *   power_write_json(json_file, &m);                          // --stats-json
 *   power_sampler_free(ps);
 *
 * Thread safety: power_sampler_mark() may be called from any thread at any time; it is one
 * clock read plus a few atomic stores and never blocks. Every other function is meant for one
 * controlling thread (the tool's main thread). A sampler can be started and stopped several
 * times (llmpi-bench: one session per run); each start() begins a new report, while the static
 * baseline from power_measure_idle() and the CSV log carry over.
 *
 * Nothing here prints or exits; errors come back as return codes plus one-line messages. */
#ifndef LLMPI_POWER_H
#define LLMPI_POWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    POWER_PHASE_IDLE = 0,   /* static baseline window (power_measure_idle marks it itself) */
    POWER_PHASE_PROMPT = 1, /* prompt processing (prefill) */
    POWER_PHASE_GEN = 2,    /* token generation (decode) */
    POWER_PHASE_OTHER = 3,  /* anything else: loading, sampling overhead after the run, ... */
} power_phase;
#define POWER_PHASE_COUNT 4

/* "idle", "prompt", "gen", "other" (the CSV log's phase column). */
const char *power_phase_name(power_phase p);

typedef struct power_config {
    /* Sensor: "auto" (default), "none", "pmic", "pmic:mailbox", "pmic:vcgencmd", "hwmon",
     * "hwmon:NAME" (driver name or hwmonN directory), "rapl", "rapl:ZONE" (e.g. package-0),
     * "um34c:/dev/rfcomm0", "um25c:/dev/rfcomm0", "cmd:COMMAND" (prints watts per line;
     * surrounding quotes are stripped), "file:PATH" (holds watts). */
    char source[256];
    double rate_hz;         /* sampling rate, default 10; (0, 1000] */
    double cal_a, cal_b;    /* W = cal_a * reading + cal_b, when cal_set (pmic has a default) */
    bool cal_set;
    char log_path[512];     /* CSV of every sample; "" = none */
    double idle_seconds;    /* static baseline window before the run; 0 = not measured */
    double battery_wh;      /* for W/BL, default 5 Wh */
    double tokens_per_word; /* for W/BL, default 1.5 */
    double read_timeout_s;  /* one meter reply / command line, default 1.0 s */
    /* Where the sensors live. Defaults: $LLMPI_SYSFS_ROOT or "/sys"; $LLMPI_VCGENCMD or
     * "vcgencmd" (a program, found on PATH, run with one argument); $LLMPI_VCIO or "/dev/vcio". */
    char sysfs_root[256];
    char vcgencmd[256];
    char vcio_path[256];
} power_config;

/* Board-level fit for the Raspberry Pi 5 PMIC rail sum against a USB-C meter (docs/energy.md):
 * board W ~= 1.1451 * sum(V*I over the PMIC rails) + 0.5879. `--power-cal 1,0` gives the raw sum. */
#define POWER_PMIC_DEFAULT_CAL_A 1.1451
#define POWER_PMIC_DEFAULT_CAL_B 0.5879

void power_config_default(power_config *c);

typedef struct power_sampler power_sampler;

/* Opens the sensor (auto-detects for "auto": pmic, hwmon, rapl, a UM meter on /dev/rfcomm0,
 * else none) and the CSV log, preallocates the ring buffer. An explicitly named source that
 * cannot be read is an error (-1, message in err); "auto" finding nothing is not (source
 * "none", the reason in power_sampler_error()). */
int power_sampler_create(const power_config *c, power_sampler **out, char *err, size_t errlen);
void power_sampler_free(power_sampler *s); /* stops the thread if running; NULL is fine */

/* e.g. "hwmon:ina226 (power1_input)", "pmic (vcgencmd, 12 rails, W = 1.1451*sum + 0.5879)", "none". */
const char *power_source_name(const power_sampler *s);
bool power_sampler_has_power(const power_sampler *s); /* false for "none" */
/* The last error or note ("" if none): why auto found nothing, why start/idle failed. */
const char *power_sampler_error(const power_sampler *s);

/* Starts a session: resets the report and spawns the sampler thread (first sample at once).
 * Returns 0, or -1 (already running / thread creation failed; see power_sampler_error). */
int power_sampler_start(power_sampler *s);
/* Records that the run entered phase p now. Lock-free, callable from any thread. */
void power_sampler_mark(power_sampler *s, power_phase p);
/* Takes a final sample, joins the thread, appends the session's samples to the CSV log.
 * Returns 0, or -1 if the log could not be written (the report is still valid). */
int power_sampler_stop(power_sampler *s);

/* Static baseline: runs a session of `seconds` in phase IDLE (the caller waits; keep the
 * machine idle) and stores its average power as static_w for every later report. Needs a
 * stopped sampler with a power source. Returns 0, or -1 with power_sampler_error() set. */
int power_measure_idle(power_sampler *s, double seconds);
/* Sets the static baseline directly (e.g. llmpi-bench reusing one measurement); NaN clears it. */
void power_sampler_set_static(power_sampler *s, double static_w);

typedef struct power_report {
    bool available;          /* a power source exists and at least one interval was integrated */
    bool partial;            /* some reads failed: energies cover covered_s of wall_s only */
    char source[160];        /* power_source_name() */
    double energy_j;         /* whole session (all phases), J; NaN if !available */
    double avg_w;            /* energy_j / covered_s */
    double covered_s;        /* seconds between valid consecutive samples (integrated) */
    double wall_s;           /* first to last sample */
    double static_w;         /* baseline from power_measure_idle, NaN if not measured */
    double dynamic_w;        /* avg_w - static_w, NaN if either is unknown */
    double phase_energy_j[POWER_PHASE_COUNT]; /* indexed by power_phase */
    double phase_seconds[POWER_PHASE_COUNT];  /* covered (integrated) seconds per phase */
    double phase_wall_s[POWER_PHASE_COUNT];   /* wall seconds per phase, gaps included */
    double max_temp_c;       /* NaN if no thermal zone */
    double min_mhz, max_mhz; /* CPU frequency seen (max over cores per sample); NaN if unknown */
    bool throttled;          /* any throttling / frequency capping / under-voltage during the session */
    uint32_t throttle_flags; /* OR of the Raspberry Pi get_throttled bits seen (0 elsewhere) */
    size_t samples, failed_samples;
    double rate_hz;
    double sampler_cpu_s;    /* CPU time the sampler thread used: its overhead on the run */
    char error[512];         /* first sensor error of the session (or the auto-detect note), "" if none */
} power_report;

/* Snapshot of the current session (also valid while running: covers samples so far). */
void power_sampler_report(const power_sampler *s, power_report *r);

/* What the tool measured about the run itself (from llmpi_gen_stats). */
typedef struct power_run_info {
    long prompt_tokens;
    double prompt_seconds;
    long gen_tokens;
    double gen_seconds;
} power_run_info;

/* The paper's figures for one run; NaN where unavailable (printed "n/a", JSON null).
 * Definitions (docs/energy.md): the run is the PROMPT+GEN phases if they were marked, else the
 * whole session. avg_w = run energy / covered run seconds; energy_j = avg_w * run wall seconds
 * (the integral itself unless reads failed); dynamic_w = avg_w - static_w; j_per_token =
 * energy_j / gen_tokens; tpj = gen_tokens / energy_j; tpj_dynamic = gen_tokens / (dynamic_w *
 * run seconds); wbl = battery_wh * 3600 / j_per_token / tokens_per_word. TPS: tokens / seconds
 * from power_run_info. */
typedef struct power_metrics {
    char power_source[160];
    char note[600];          /* why energy is unavailable or partial, "" otherwise */
    long prompt_tokens, gen_tokens;
    double prompt_tps, gen_tps;
    double energy_j, run_seconds;
    double avg_w, static_w, dynamic_w;
    double j_per_token, tpj, tpj_dynamic, wbl;
    double battery_wh, tokens_per_word;
    double max_temp_c;
    bool throttled;
    bool energy_partial;
    size_t samples;          /* sensor samples in the session */
    double rate_hz;
} power_metrics;

/* report may be NULL (no sampler): then only the TPS figures are set. */
void power_compute_metrics(const power_report *report, const power_run_info *run, double battery_wh,
                           double tokens_per_word, power_metrics *m);
/* Human-readable energy lines (power, energy/W, per-token figures, temperature), each prefixed. */
void power_print_metrics(FILE *out, const char *prefix, const power_metrics *m);
/* One JSON object + newline with the keys prompt_tokens, prompt_tps, gen_tokens, gen_tps,
 * power_source, energy_j, avg_w, static_w, dynamic_w, j_per_token, tpj, tpj_dynamic, wbl,
 * battery_wh, tokens_per_word, max_temp_c, throttled, energy_partial. Returns 0 or -1 (I/O). */
int power_write_json(FILE *out, const power_metrics *m);

/* Command-line options shared by the tools: --power SOURCE, --power-cal A,B, --power-log FILE,
 * --power-rate HZ, --idle-seconds N, --battery-wh X, --tokens-per-word X (each also as
 * --opt=VALUE). Looks at argv[i]: returns how many argv entries it consumed (1 or 2), 0 if
 * argv[i] is not a power option, or -1 with a one-line message in err. */
int power_cli_parse(power_config *c, int argc, char **argv, int i, char *err, size_t errlen);
/* Usage lines for the options above (ends with a newline). */
const char *power_cli_usage(void);

#endif
