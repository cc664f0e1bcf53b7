/* Internals of the power sampler shared by tools/power*.c and tests/test_power.c: the sensor
 * interface, the pure parsers, and test hooks that drive the integrator with synthetic samples.
 * Tools use tools/power.h only. */
#ifndef LLMPI_POWER_INTERNAL_H
#define LLMPI_POWER_INTERNAL_H

#include "power.h"

/* ---- Sensors (tools/power_sources.c) ---- */

typedef struct power_reading {
    bool is_energy;   /* true: energy_j is a cumulative counter; false: watts is instantaneous */
    double watts;     /* W, before calibration */
    double energy_j;  /* J, cumulative, already unwrapped (RAPL) */
    char detail[64];  /* short per-sample description for the CSV log, e.g. "5.102V 0.712A" */
} power_reading;

typedef struct power_source power_source;
struct power_source {
    char name[160];
    double cal_a, cal_b; /* applied by the sampler: W = a * reading + b */
    bool cal_on;
    bool uses_vcgencmd;  /* pmic via a vcgencmd process: throttle flags may use it too */
    /* Returns 0 with *out filled, or -1 with a one-line message (the sample is then a gap). */
    int (*read)(power_source *src, power_reading *out, char *err, size_t errlen);
    void (*close)(power_source *src);
    void *state;
};

/* Opens c->source ("auto" tries pmic, hwmon, rapl, a UM meter on /dev/rfcomm0). Returns 1 with
 * *src ready, 0 for "none" (auto found nothing: the reason goes to note), -1 with err. */
int power_source_open(const power_config *c, power_source *src, char *note, size_t notelen, char *err,
                      size_t errlen);
void power_source_close(power_source *src);

/* Temperature, frequency and throttling read alongside each power sample. */
typedef struct power_aux power_aux;
typedef struct power_aux_values {
    double temp_c;          /* NaN if unknown */
    double mhz;             /* max over CPUs, NaN if unknown */
    uint32_t throttle;      /* Raspberry Pi get_throttled bits (x86: bit 2/18 from thermal_throttle counts) */
    bool throttle_known;
} power_aux_values;
power_aux *power_aux_open(const power_config *c, bool allow_vcgencmd);
void power_aux_read(power_aux *a, power_aux_values *v);
void power_aux_free(power_aux *a);

/* ---- Pure parsers (exposed for tests) ---- */

/* Parses `vcgencmd pmic_read_adc` text: pairs "<RAIL>_A current(n)=xA" with "<RAIL>_V volt(m)=yV"
 * by rail name and sums x*y. *ext5v_v gets EXT5V_V (NaN if absent). Returns the number of
 * paired rails (0 = nothing usable). */
int power_parse_pmic(const char *text, double *sum_w, double *ext5v_v);
/* Parses "throttled=0x50005" (or a bare hex number as in sysfs). Returns 0 or -1. */
int power_parse_throttled(const char *text, uint32_t *flags);

/* UM meter frames: 130 bytes, big-endian. Models differ in the voltage/current scale. */
#define POWER_UM_FRAME 130
enum { POWER_UM_AUTO = 0, POWER_UM34C = 1, POWER_UM25C = 2 };
/* Finds the first valid frame for `model` in buf[0..len): returns its offset, -1 if none is
 * complete yet (*keep_from = first byte worth keeping for the next read), and fills v/a/w.
 * With model AUTO the header decides; *seen_model reports a header of another model. */
long power_um_scan(const uint8_t *buf, size_t len, int model, double *volts, double *amps, double *watts,
                   int *found_model, size_t *keep_from);
/* Builds a frame (tests and documentation of the layout): v, a, w in V, A, W. */
void power_um_encode(uint8_t frame[POWER_UM_FRAME], int model, double volts, double amps, double watts);

/* ---- Test hooks: drive the integrator deterministically, no thread, no sensor ---- */

/* A sampler with a synthetic source named "test"; feed it samples with explicit times (s). */
int power_sampler_create_manual(const power_config *c, power_sampler **out);
void power_sampler_feed(power_sampler *s, double t, double watts);
void power_sampler_feed_energy(power_sampler *s, double t, double cumulative_j);
void power_sampler_feed_error(power_sampler *s, double t, const char *message);
void power_sampler_mark_at(power_sampler *s, power_phase p, double t);
/* Copies up to n of the most recent samples' (t, watts, phase) into the arrays, oldest first.
 * Returns how many were copied. */
size_t power_sampler_recent(const power_sampler *s, double *t, double *watts, int *phase, size_t n);

#endif
