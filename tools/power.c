/* Power sampler core: the sampling thread, phase marks, energy integration, reports, metrics and
 * their output. Sensors live in power_sources.c, option parsing in power_cli.c. */
#include "power_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Phase marks kept per session. A run makes a handful (prompt, gen, other); beyond this the
 * phase of later marks is taken at sample resolution instead of exactly. */
#define MARK_CAPACITY 4096

typedef struct power_mark {
    _Atomic uint64_t t_ns; /* nanoseconds since the sampler's epoch */
    _Atomic int phase;
    _Atomic int ready;     /* set last (release) so a reader never sees a half-written mark */
} power_mark;

typedef struct power_sample {
    double t;        /* seconds since the sampler's epoch (CLOCK_MONOTONIC) */
    double watts;    /* calibrated W; NaN for failed reads and the first energy-counter read */
    double temp_c;   /* NaN if unknown */
    double mhz;      /* NaN if unknown */
    uint32_t throttle;
    uint8_t phase;
    bool ok;         /* false: the read failed, detail holds the error */
    char detail[72];
} power_sample;

/* Everything a report shows, reset by each start(); guarded by power_sampler.mu. */
typedef struct power_totals {
    double energy_j, covered_s, first_t, last_t;
    double phase_e[POWER_PHASE_COUNT], phase_s[POWER_PHASE_COUNT], phase_wall[POWER_PHASE_COUNT];
    double max_temp, min_mhz, max_mhz;
    uint32_t throttle_or, throttle_first;
    bool throttle_seen, throttled;
    size_t samples, failed;
    bool partial;
    char error[512];
    double cpu_s;
} power_totals;

typedef enum { SAMPLE_OK, SAMPLE_FAILED, SAMPLE_NO_SENSOR } sample_kind;

struct power_sampler {
    power_config cfg;
    power_source src;
    bool has_source; /* a real (or, for tests, synthetic) power source exists */
    bool manual;     /* test hooks feed samples; no sensor, no thread */
    power_aux *aux;
    char note[512];  /* auto-detect note or the last start/idle error */
    uint64_t epoch_ns;

    power_mark *marks;
    _Atomic size_t n_marks;
    _Atomic int phase_now;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running;        /* owner thread only */
    bool stop_requested; /* under mu */
    double stop_t;       /* under mu */

    /* Integrator state: touched only by the sampling thread (or the test feeder). */
    size_t marks_used;
    int integ_phase;
    bool have_prev, prev_ok, prev_is_energy;
    double prev_t, prev_w, prev_e, last_sample_t;

    /* Ring of recent samples. Entries are written by the integrator under mu; the CSV writer
     * (same thread, or the owner after join) reads entries in [ring_logged, ring_total). */
    power_sample *ring;
    size_t ring_cap;
    uint64_t ring_total, ring_logged;
    FILE *log;
    bool log_failed;

    power_totals tot; /* under mu */
    double static_w;  /* owner thread */
};

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double now_s(const power_sampler *s) { return (double)(monotonic_ns() - s->epoch_ns) * 1e-9; }

/* snprintf into a message buffer; truncating long paths in messages is fine. */
static void msgf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msgf(char *dst, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static void set_msg(char *dst, size_t n, const char *src) {
    if (n == 0) return;
    snprintf(dst, n, "%s", src ? src : "");
}

const char *power_phase_name(power_phase p) {
    switch (p) {
    case POWER_PHASE_IDLE: return "idle";
    case POWER_PHASE_PROMPT: return "prompt";
    case POWER_PHASE_GEN: return "gen";
    case POWER_PHASE_OTHER: return "other";
    }
    return "other";
}

static void copy_env(char *dst, size_t n, const char *env, const char *fallback) {
    const char *v = getenv(env);
    snprintf(dst, n, "%s", v && *v ? v : fallback);
}

void power_config_default(power_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->source, sizeof c->source, "auto");
    c->rate_hz = 10.0;
    c->cal_a = 1.0;
    c->cal_b = 0.0;
    c->battery_wh = 5.0;
    c->tokens_per_word = 1.5;
    c->read_timeout_s = 1.0;
    copy_env(c->sysfs_root, sizeof c->sysfs_root, "LLMPI_SYSFS_ROOT", "/sys");
    copy_env(c->vcgencmd, sizeof c->vcgencmd, "LLMPI_VCGENCMD", "vcgencmd");
    copy_env(c->vcio_path, sizeof c->vcio_path, "LLMPI_VCIO", "/dev/vcio");
}

/* ---------------------------------------------------------------- totals / CSV */

static void totals_reset(power_totals *t) {
    memset(t, 0, sizeof *t);
    t->first_t = NAN;
    t->last_t = NAN;
    t->max_temp = NAN;
    t->min_mhz = NAN;
    t->max_mhz = NAN;
}

/* CSV field: quoted when it holds a comma, quote or newline. */
static void csv_text(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void csv_number(FILE *f, const char *fmt, double v) {
    if (isfinite(v)) fprintf(f, fmt, v);
}

/* Writes ring entries not yet logged. Entries older than the ring were overwritten only if the
 * log fell behind by a whole ring, which flush_due() prevents. */
static void log_pending(power_sampler *s) {
    if (!s->log) return;
    uint64_t oldest = s->ring_total > s->ring_cap ? s->ring_total - s->ring_cap : 0;
    if (s->ring_logged < oldest) s->ring_logged = oldest;
    for (; s->ring_logged < s->ring_total; s->ring_logged++) {
        const power_sample *p = &s->ring[s->ring_logged % s->ring_cap];
        FILE *f = s->log;
        fprintf(f, "%.4f,%s,", p->t, power_phase_name((power_phase)p->phase));
        csv_number(f, "%.4f", p->watts);
        fputc(',', f);
        if (p->ok) csv_text(f, p->detail);
        fputc(',', f);
        csv_number(f, "%.1f", p->temp_c);
        fputc(',', f);
        csv_number(f, "%.0f", p->mhz);
        fprintf(f, ",0x%" PRIx32 ",", p->throttle);
        if (!p->ok) csv_text(f, p->detail);
        fputc('\n', f);
    }
    if (ferror(s->log)) s->log_failed = true;
}

/* ---------------------------------------------------------------- integration */

/* One sample enters the integrator: consumes the phase marks up to its time, integrates the
 * interval since the previous valid sample split at those marks, and updates the totals.
 * `watts` is calibrated instantaneous power (kind OK, !is_energy) and `energy_j` a cumulative
 * counter (is_energy). */
static void ingest(power_sampler *s, double t, sample_kind kind, bool is_energy, double watts, double energy_j,
                   const char *detail, const power_aux_values *aux) {
    double seg_e[POWER_PHASE_COUNT] = { 0 }, seg_s[POWER_PHASE_COUNT] = { 0 }, seg_wall[POWER_PHASE_COUNT] = { 0 };
    char err[200] = "";
    double sample_w = NAN;
    double t0 = s->have_prev ? s->prev_t : t;
    bool integrate = false;
    double interval_e = 0.0; /* energy counters: calibrated energy of [t0, t] */

    if (kind == SAMPLE_OK && t > t0 && s->have_prev && s->prev_ok && s->prev_is_energy == is_energy) {
        integrate = true;
        if (is_energy) {
            double de = energy_j - s->prev_e;
            if (de < 0) {
                integrate = false;
                snprintf(err, sizeof err, "energy counter went backwards by %.3f J (sensor reset?)", -de);
            } else {
                interval_e = s->src.cal_on ? s->src.cal_a * de + s->src.cal_b * (t - t0) : de;
                sample_w = interval_e / (t - t0);
            }
        }
    }
    if (kind == SAMPLE_OK && !is_energy) sample_w = watts;

    /* Walk the marks in [t0, t]: each segment [a, b] belongs to one phase. */
    double a = t0;
    int ph = s->integ_phase;
    for (;;) {
        size_t n = atomic_load_explicit(&s->n_marks, memory_order_acquire);
        if (s->marks_used >= MARK_CAPACITY && n > MARK_CAPACITY) { /* overflow: sample resolution */
            ph = atomic_load_explicit(&s->phase_now, memory_order_relaxed);
            break;
        }
        if (s->marks_used >= n) break;
        power_mark *m = &s->marks[s->marks_used];
        if (!atomic_load_explicit(&m->ready, memory_order_acquire)) break;
        double mt = (double)atomic_load_explicit(&m->t_ns, memory_order_relaxed) * 1e-9;
        if (mt > t) break;
        /* A mark published late (its time before t0) takes effect at t0. */
        double b = mt < a ? a : mt;
        if (s->have_prev) seg_wall[ph] += b - a;
        if (integrate) seg_s[ph] += b - a;
        if (integrate && !is_energy) {
            double span = t - t0;
            double pa = s->prev_w + (watts - s->prev_w) * (a - t0) / span;
            double pb = s->prev_w + (watts - s->prev_w) * (b - t0) / span;
            seg_e[ph] += 0.5 * (pa + pb) * (b - a);
        } else if (integrate) {
            seg_e[ph] += interval_e * (b - a) / (t - t0);
        }
        a = b;
        int np = atomic_load_explicit(&m->phase, memory_order_relaxed);
        ph = np >= 0 && np < POWER_PHASE_COUNT ? np : POWER_PHASE_OTHER;
        s->marks_used++;
    }
    if (s->have_prev && t > a) seg_wall[ph] += t - a;
    if (integrate && t > a) {
        seg_s[ph] += t - a;
        if (!is_energy) {
            double span = t - t0;
            double pa = s->prev_w + (watts - s->prev_w) * (a - t0) / span;
            seg_e[ph] += 0.5 * (pa + watts) * (t - a);
        } else {
            seg_e[ph] += interval_e * (t - a) / (t - t0);
        }
    }
    s->integ_phase = ph;

    /* Integrator state for the next interval. A failed read leaves a gap: the next valid
     * sample starts a new interval instead of bridging it. */
    if (kind == SAMPLE_OK) {
        s->prev_ok = true;
        s->prev_is_energy = is_energy;
        s->prev_w = watts;
        s->prev_e = energy_j;
    } else if (kind == SAMPLE_FAILED) {
        s->prev_ok = false;
    }
    s->have_prev = true;
    s->prev_t = t;
    s->last_sample_t = t;

    pthread_mutex_lock(&s->mu);
    power_totals *tt = &s->tot;
    for (int p = 0; p < POWER_PHASE_COUNT; p++) {
        tt->energy_j += seg_e[p];
        tt->covered_s += seg_s[p];
        tt->phase_e[p] += seg_e[p];
        tt->phase_s[p] += seg_s[p];
        tt->phase_wall[p] += seg_wall[p];
    }
    if (isnan(tt->first_t)) tt->first_t = t;
    tt->last_t = t;
    if (kind == SAMPLE_FAILED) {
        tt->failed++;
        tt->partial = true;
        if (!tt->error[0]) set_msg(tt->error, sizeof tt->error, detail);
    } else {
        tt->samples++;
    }
    if (err[0]) {
        tt->partial = true;
        if (!tt->error[0]) set_msg(tt->error, sizeof tt->error, err);
    }
    if (aux) {
        if (isfinite(aux->temp_c) && !(aux->temp_c <= tt->max_temp)) tt->max_temp = aux->temp_c;
        if (isfinite(aux->mhz)) {
            if (!(aux->mhz >= tt->min_mhz)) tt->min_mhz = aux->mhz;
            if (!(aux->mhz <= tt->max_mhz)) tt->max_mhz = aux->mhz;
        }
        if (aux->throttle_known) {
            if (!tt->throttle_seen) { tt->throttle_first = aux->throttle; tt->throttle_seen = true; }
            tt->throttle_or |= aux->throttle;
            /* Bits 0-3: under-voltage / frequency capped / throttled / soft temperature limit now.
             * Bits 16-19: the same "has occurred since boot": counts only if newly set. */
            uint32_t new_occurred = aux->throttle & ~tt->throttle_first & 0xF0000u;
            if ((aux->throttle & 0xFu) || new_occurred) tt->throttled = true;
        }
    }
    power_sample *p = &s->ring[s->ring_total % s->ring_cap];
    p->t = t;
    p->watts = sample_w;
    p->temp_c = aux ? aux->temp_c : NAN;
    p->mhz = aux ? aux->mhz : NAN;
    p->throttle = aux && aux->throttle_known ? aux->throttle : 0;
    p->phase = (uint8_t)ph;
    p->ok = kind != SAMPLE_FAILED && !err[0];
    set_msg(p->detail, sizeof p->detail, err[0] ? err : detail);
    s->ring_total++;
    pthread_mutex_unlock(&s->mu);

    /* Buffered CSV output from this (sampling) thread once half the ring is pending. */
    if (s->log && s->ring_total - s->ring_logged >= s->ring_cap / 2) log_pending(s);
}

static void take_sample(power_sampler *s) {
    power_aux_values aux = { NAN, NAN, 0, false };
    if (!s->has_source) {
        if (s->aux) power_aux_read(s->aux, &aux);
        ingest(s, now_s(s), SAMPLE_NO_SENSOR, false, NAN, NAN, "", &aux);
        return;
    }
    power_reading rd;
    memset(&rd, 0, sizeof rd);
    char err[200] = "";
    double t0 = now_s(s);
    int rc = s->src.read(&s->src, &rd, err, sizeof err);
    double t1 = now_s(s);
    if (s->aux) power_aux_read(s->aux, &aux);
    /* A read takes time (PMIC ~23 ms, a Bluetooth meter ~100+ ms): stamp its midpoint. */
    double t = 0.5 * (t0 + t1);
    if (rc != 0) {
        ingest(s, t, SAMPLE_FAILED, false, NAN, NAN, err[0] ? err : "read failed", &aux);
        return;
    }
    double w = rd.watts;
    if (!rd.is_energy && s->src.cal_on) w = s->src.cal_a * w + s->src.cal_b;
    ingest(s, t, SAMPLE_OK, rd.is_energy, w, rd.energy_j, rd.detail, &aux);
}

/* ---------------------------------------------------------------- thread */

static struct timespec abs_deadline(const power_sampler *s, double t) {
    uint64_t ns = s->epoch_ns + (uint64_t)(t * 1e9);
    struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
    return ts;
}

static void *sampler_main(void *arg) {
    power_sampler *s = arg;
    double period = 1.0 / s->cfg.rate_hz;
    double next = now_s(s);
    for (;;) {
        take_sample(s);
        double n = now_s(s);
        next += period;
        if (next <= n) next = n + period * 0.5; /* a slow read: resume promptly, keep no backlog */
        pthread_mutex_lock(&s->mu);
        while (!s->stop_requested && now_s(s) < next) {
            struct timespec ts = abs_deadline(s, next);
            int rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            if (rc == ETIMEDOUT) break;
        }
        bool stop = s->stop_requested;
        double stop_t = s->stop_t;
        pthread_mutex_unlock(&s->mu);
        if (stop) {
            /* Close the session at the stop time unless a sample already did. */
            if (s->last_sample_t < stop_t) take_sample(s);
            break;
        }
    }
    struct timespec cpu;
    double cpu_s = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0 ? (double)cpu.tv_sec + cpu.tv_nsec * 1e-9 : 0.0;
    pthread_mutex_lock(&s->mu);
    s->tot.cpu_s = cpu_s;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static power_sampler *sampler_alloc(const power_config *c, char *err, size_t errlen) {
    if (!(c->rate_hz > 0 && c->rate_hz <= 1000)) {
        msgf(err, errlen, "power sampling rate %g Hz is out of range (0, 1000]", c->rate_hz);
        return NULL;
    }
    power_sampler *s = calloc(1, sizeof *s);
    if (!s) { set_msg(err, errlen, "out of memory"); return NULL; }
    s->cfg = *c;
    s->ring_cap = (size_t)(c->rate_hz * 60.0);
    if (s->ring_cap < 256) s->ring_cap = 256;
    if (s->ring_cap > 16384) s->ring_cap = 16384;
    s->ring = calloc(s->ring_cap, sizeof *s->ring);
    s->marks = calloc(MARK_CAPACITY, sizeof *s->marks);
    if (!s->ring || !s->marks) {
        free(s->ring); free(s->marks); free(s);
        set_msg(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->epoch_ns = monotonic_ns();
    s->static_w = NAN;
    atomic_init(&s->n_marks, 0);
    atomic_init(&s->phase_now, POWER_PHASE_OTHER);
    s->integ_phase = POWER_PHASE_OTHER;
    totals_reset(&s->tot);
    return s;
}

static int open_log(power_sampler *s, char *err, size_t errlen) {
    if (!s->cfg.log_path[0]) return 0;
    s->log = fopen(s->cfg.log_path, "w");
    if (!s->log) {
        msgf(err, errlen, "cannot write power log %s: %s", s->cfg.log_path, strerror(errno));
        return -1;
    }
    fputs("t_s,phase,watts,source_detail,temp_c,cpu_mhz,throttle_flags,error\n", s->log);
    return 0;
}

int power_sampler_create(const power_config *c, power_sampler **out, char *err, size_t errlen) {
    *out = NULL;
    power_sampler *s = sampler_alloc(c, err, errlen);
    if (!s) return -1;
    int rc = power_source_open(c, &s->src, s->note, sizeof s->note, err, errlen);
    if (rc < 0) { power_sampler_free(s); return -1; }
    s->has_source = rc == 1;
    if (!s->has_source) snprintf(s->src.name, sizeof s->src.name, "none");
    /* vcgencmd for throttle flags only where it is already in use (it spawns a process). */
    s->aux = power_aux_open(c, s->has_source && s->src.uses_vcgencmd);
    if (open_log(s, err, errlen) != 0) { power_sampler_free(s); return -1; }
    *out = s;
    return 0;
}

int power_sampler_create_manual(const power_config *c, power_sampler **out) {
    char err[64];
    *out = sampler_alloc(c, err, sizeof err);
    if (!*out) return -1;
    power_sampler *s = *out;
    s->manual = true;
    s->has_source = true;
    snprintf(s->src.name, sizeof s->src.name, "test");
    s->src.cal_on = c->cal_set;
    s->src.cal_a = c->cal_a;
    s->src.cal_b = c->cal_b;
    if (open_log(s, err, sizeof err) != 0) { power_sampler_free(s); *out = NULL; return -1; }
    return 0;
}

const char *power_source_name(const power_sampler *s) { return s ? s->src.name : "none"; }
bool power_sampler_has_power(const power_sampler *s) { return s && s->has_source; }
const char *power_sampler_error(const power_sampler *s) { return s ? s->note : ""; }

static void mark_record(power_sampler *s, int phase, uint64_t t_ns) {
    atomic_store_explicit(&s->phase_now, phase, memory_order_relaxed);
    size_t i = atomic_fetch_add_explicit(&s->n_marks, 1, memory_order_acq_rel);
    if (i >= MARK_CAPACITY) return;
    atomic_store_explicit(&s->marks[i].t_ns, t_ns, memory_order_relaxed);
    atomic_store_explicit(&s->marks[i].phase, phase, memory_order_relaxed);
    atomic_store_explicit(&s->marks[i].ready, 1, memory_order_release);
}

void power_sampler_mark(power_sampler *s, power_phase p) {
    if (!s || (int)p < 0 || (int)p >= POWER_PHASE_COUNT) return;
    mark_record(s, (int)p, monotonic_ns() - s->epoch_ns);
}

void power_sampler_mark_at(power_sampler *s, power_phase p, double t) {
    if (!s || (int)p < 0 || (int)p >= POWER_PHASE_COUNT || !(t >= 0)) return;
    mark_record(s, (int)p, (uint64_t)llround(t * 1e9));
}

/* New session: fresh totals, marks and integrator; the current phase carries over. */
static void session_reset(power_sampler *s) {
    size_t used = atomic_load(&s->n_marks);
    if (used > MARK_CAPACITY) used = MARK_CAPACITY;
    for (size_t i = 0; i < used; i++) atomic_store(&s->marks[i].ready, 0);
    atomic_store(&s->n_marks, 0);
    s->marks_used = 0;
    s->integ_phase = atomic_load(&s->phase_now);
    s->have_prev = s->prev_ok = false;
    s->last_sample_t = -1.0;
    pthread_mutex_lock(&s->mu);
    totals_reset(&s->tot);
    s->stop_requested = false;
    pthread_mutex_unlock(&s->mu);
}

int power_sampler_start(power_sampler *s) {
    if (!s) return -1;
    if (s->running) { set_msg(s->note, sizeof s->note, "power sampler already running"); return -1; }
    if (s->manual) { set_msg(s->note, sizeof s->note, "a manual (test) sampler has no thread"); return -1; }
    session_reset(s);
    int rc = pthread_create(&s->thread, NULL, sampler_main, s);
    if (rc != 0) {
        msgf(s->note, sizeof s->note, "cannot start the power sampler thread: %s", strerror(rc));
        return -1;
    }
    s->running = true;
    return 0;
}

int power_sampler_stop(power_sampler *s) {
    if (!s || !s->running) return 0;
    pthread_mutex_lock(&s->mu);
    s->stop_requested = true;
    s->stop_t = now_s(s);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->running = false;
    if (!s->log) return 0;
    log_pending(s);
    if (fflush(s->log) != 0) s->log_failed = true;
    if (s->log_failed) {
        msgf(s->note, sizeof s->note, "writing power log %s failed", s->cfg.log_path);
        return -1;
    }
    return 0;
}

void power_sampler_set_static(power_sampler *s, double static_w) {
    if (s) s->static_w = static_w;
}

static void sleep_until(uint64_t deadline_ns) {
    struct timespec ts = { (time_t)(deadline_ns / 1000000000ull), (long)(deadline_ns % 1000000000ull) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

int power_measure_idle(power_sampler *s, double seconds) {
    if (!s) return -1;
    if (!s->has_source || s->manual) {
        set_msg(s->note, sizeof s->note, "no power source: the static (idle) power cannot be measured");
        return -1;
    }
    if (s->running) { set_msg(s->note, sizeof s->note, "power_measure_idle needs a stopped sampler"); return -1; }
    if (!(seconds > 0)) { set_msg(s->note, sizeof s->note, "idle window must be positive"); return -1; }
    atomic_store(&s->phase_now, POWER_PHASE_IDLE);
    if (power_sampler_start(s) != 0) return -1;
    sleep_until(monotonic_ns() + (uint64_t)(seconds * 1e9));
    power_sampler_mark(s, POWER_PHASE_OTHER);
    int log_rc = power_sampler_stop(s);
    power_report r;
    power_sampler_report(s, &r);
    double idle_s = r.phase_seconds[POWER_PHASE_IDLE];
    if (!(idle_s > 0)) {
        msgf(s->note, sizeof s->note, "static power not measured: no valid samples in the %.1f s idle window%s%s",
                 seconds, r.error[0] ? ": " : "", r.error);
        s->static_w = NAN;
        return -1;
    }
    s->static_w = r.phase_energy_j[POWER_PHASE_IDLE] / idle_s;
    if (r.partial)
        msgf(s->note, sizeof s->note, "static power from %.1f of %.1f idle seconds (%s)", idle_s, seconds, r.error);
    return log_rc;
}

void power_sampler_report(const power_sampler *s, power_report *r) {
    memset(r, 0, sizeof *r);
    r->energy_j = r->avg_w = r->dynamic_w = r->static_w = NAN;
    r->max_temp_c = r->min_mhz = r->max_mhz = NAN;
    if (!s) { set_msg(r->source, sizeof r->source, "none"); return; }
    set_msg(r->source, sizeof r->source, s->src.name);
    r->rate_hz = s->cfg.rate_hz;
    r->static_w = s->static_w;
    power_sampler *ms = (power_sampler *)s; /* the mutex is the only thing touched */
    pthread_mutex_lock(&ms->mu);
    const power_totals *t = &s->tot;
    r->covered_s = t->covered_s;
    r->wall_s = isnan(t->first_t) ? 0.0 : t->last_t - t->first_t;
    for (int p = 0; p < POWER_PHASE_COUNT; p++) {
        r->phase_energy_j[p] = t->phase_e[p];
        r->phase_seconds[p] = t->phase_s[p];
        r->phase_wall_s[p] = t->phase_wall[p];
    }
    r->available = s->has_source && t->covered_s > 0;
    if (r->available) {
        r->energy_j = t->energy_j;
        r->avg_w = t->energy_j / t->covered_s;
        r->dynamic_w = r->avg_w - r->static_w;
    }
    r->partial = t->partial;
    r->max_temp_c = t->max_temp;
    r->min_mhz = t->min_mhz;
    r->max_mhz = t->max_mhz;
    r->throttled = t->throttled;
    r->throttle_flags = t->throttle_or;
    r->samples = t->samples;
    r->failed_samples = t->failed;
    r->sampler_cpu_s = t->cpu_s;
    set_msg(r->error, sizeof r->error, t->error[0] ? t->error : s->note);
    pthread_mutex_unlock(&ms->mu);
}

size_t power_sampler_recent(const power_sampler *s, double *t, double *watts, int *phase, size_t n) {
    power_sampler *ms = (power_sampler *)s;
    pthread_mutex_lock(&ms->mu);
    size_t avail = s->ring_total < s->ring_cap ? (size_t)s->ring_total : s->ring_cap;
    if (n > avail) n = avail;
    for (size_t i = 0; i < n; i++) {
        const power_sample *p = &s->ring[(s->ring_total - n + i) % s->ring_cap];
        if (t) t[i] = p->t;
        if (watts) watts[i] = p->watts;
        if (phase) phase[i] = p->phase;
    }
    pthread_mutex_unlock(&ms->mu);
    return n;
}

void power_sampler_feed(power_sampler *s, double t, double watts) {
    double w = s->src.cal_on ? s->src.cal_a * watts + s->src.cal_b : watts;
    char detail[32];
    snprintf(detail, sizeof detail, "%.3fW", watts);
    ingest(s, t, SAMPLE_OK, false, w, NAN, detail, NULL);
}

void power_sampler_feed_energy(power_sampler *s, double t, double cumulative_j) {
    ingest(s, t, SAMPLE_OK, true, NAN, cumulative_j, "counter", NULL);
}

void power_sampler_feed_error(power_sampler *s, double t, const char *message) {
    ingest(s, t, SAMPLE_FAILED, false, NAN, NAN, message, NULL);
}

void power_sampler_free(power_sampler *s) {
    if (!s) return;
    power_sampler_stop(s);
    if (s->log) { log_pending(s); fclose(s->log); }
    if (!s->manual) power_source_close(&s->src);
    power_aux_free(s->aux);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->ring);
    free(s->marks);
    free(s);
}

/* ---------------------------------------------------------------- metrics and output */

void power_compute_metrics(const power_report *report, const power_run_info *run, double battery_wh,
                           double tokens_per_word, power_metrics *m) {
    memset(m, 0, sizeof *m);
    m->prompt_tps = m->gen_tps = m->energy_j = m->run_seconds = NAN;
    m->avg_w = m->static_w = m->dynamic_w = m->j_per_token = m->tpj = m->tpj_dynamic = m->wbl = NAN;
    m->max_temp_c = m->rate_hz = NAN;
    m->battery_wh = battery_wh;
    m->tokens_per_word = tokens_per_word;
    if (run) {
        m->prompt_tokens = run->prompt_tokens;
        m->gen_tokens = run->gen_tokens;
        if (run->prompt_seconds > 0 && run->prompt_tokens > 0) m->prompt_tps = run->prompt_tokens / run->prompt_seconds;
        if (run->gen_seconds > 0 && run->gen_tokens > 0) m->gen_tps = run->gen_tokens / run->gen_seconds;
    }
    if (!report) {
        set_msg(m->power_source, sizeof m->power_source, "none");
        set_msg(m->note, sizeof m->note, "power not measured");
        return;
    }
    set_msg(m->power_source, sizeof m->power_source, report->source);
    m->static_w = report->static_w;
    m->max_temp_c = report->max_temp_c;
    m->throttled = report->throttled;
    m->samples = report->samples;
    m->rate_hz = report->rate_hz;
    m->energy_partial = report->partial;
    if (!report->available) {
        msgf(m->note, sizeof m->note, "energy unavailable: %s",
                 report->error[0] ? report->error : "no power sensor (see --power)");
        return;
    }
    /* The run = prompt + generation phases when the tool marked them, else the whole session.
     * Average power comes from the integrated (covered) time; the run's energy is that average
     * over the run's wall time, which equals the integral when no read failed. */
    double covered = report->phase_seconds[POWER_PHASE_PROMPT] + report->phase_seconds[POWER_PHASE_GEN];
    double energy = report->phase_energy_j[POWER_PHASE_PROMPT] + report->phase_energy_j[POWER_PHASE_GEN];
    double wall = report->phase_wall_s[POWER_PHASE_PROMPT] + report->phase_wall_s[POWER_PHASE_GEN];
    if (!(covered > 0)) {
        covered = report->covered_s;
        energy = report->energy_j;
        wall = report->wall_s;
    }
    if (!(covered > 0)) {
        set_msg(m->note, sizeof m->note, "energy unavailable: no power samples during the run");
        return;
    }
    if (wall < covered) wall = covered;
    m->avg_w = energy / covered;
    m->run_seconds = wall;
    m->energy_j = m->avg_w * wall;
    m->dynamic_w = m->avg_w - m->static_w; /* NaN without a baseline */
    if (m->gen_tokens > 0) {
        m->j_per_token = m->energy_j / (double)m->gen_tokens;
        m->tpj = (double)m->gen_tokens / m->energy_j;
        double dyn_energy = m->dynamic_w * wall;
        if (dyn_energy > 0) m->tpj_dynamic = (double)m->gen_tokens / dyn_energy;
        if (battery_wh > 0 && tokens_per_word > 0) m->wbl = battery_wh * 3600.0 / m->j_per_token / tokens_per_word;
    }
    if (report->partial)
        msgf(m->note, sizeof m->note, "partial: sensor data for %.1f of %.1f s, energy scaled from the measured average (%s)",
                 covered, wall, report->error);
    else if (isfinite(m->dynamic_w) && m->dynamic_w <= 0)
        set_msg(m->note, sizeof m->note, "average power did not exceed the static baseline: dynamic TPJ undefined");
}

/* "%.*g" of v, or "n/a". */
static const char *fmt_num(char *buf, size_t n, const char *fmt, double v) {
    if (!isfinite(v)) return "n/a";
    snprintf(buf, n, fmt, v);
    return buf;
}

void power_print_metrics(FILE *out, const char *prefix, const power_metrics *m) {
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    const char *px = prefix ? prefix : "";
    fprintf(out, "%spower: %s", px, m->power_source);
    if (m->samples > 0 && isfinite(m->rate_hz)) fprintf(out, ", %zu samples at %g Hz", m->samples, m->rate_hz);
    fputc('\n', out);
    fprintf(out, "%senergy: %s J over %s s, avg %s W, static %s W, dynamic %s W\n", px,
            fmt_num(b1, sizeof b1, "%.3f", m->energy_j), fmt_num(b2, sizeof b2, "%.3f", m->run_seconds),
            fmt_num(b3, sizeof b3, "%.3f", m->avg_w), fmt_num(b4, sizeof b4, "%.3f", m->static_w),
            fmt_num(b5, sizeof b5, "%.3f", m->dynamic_w));
    fprintf(out, "%sper token: %s J/token, TPJ %s tokens/J (dynamic %s), W/BL %s words (battery %g Wh, %g tokens/word)\n",
            px, fmt_num(b1, sizeof b1, "%.4f", m->j_per_token), fmt_num(b2, sizeof b2, "%.3f", m->tpj),
            fmt_num(b3, sizeof b3, "%.3f", m->tpj_dynamic), fmt_num(b4, sizeof b4, "%.3g", m->wbl), m->battery_wh,
            m->tokens_per_word);
    fprintf(out, "%scpu: max temp %s C, throttled: %s\n", px, fmt_num(b1, sizeof b1, "%.1f", m->max_temp_c),
            m->throttled ? "yes" : "no");
    if (m->note[0]) fprintf(out, "%snote: %s\n", px, m->note);
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, const char *key, double v, bool comma) {
    fprintf(f, "\"%s\": ", key);
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
    if (comma) fputs(", ", f);
}

int power_write_json(FILE *out, const power_metrics *m) {
    fprintf(out, "{\"prompt_tokens\": %ld, ", m->prompt_tokens);
    json_number(out, "prompt_tps", m->prompt_tps, true);
    fprintf(out, "\"gen_tokens\": %ld, ", m->gen_tokens);
    json_number(out, "gen_tps", m->gen_tps, true);
    fputs("\"power_source\": ", out);
    json_string(out, m->power_source);
    fputs(", ", out);
    json_number(out, "energy_j", m->energy_j, true);
    json_number(out, "avg_w", m->avg_w, true);
    json_number(out, "static_w", m->static_w, true);
    json_number(out, "dynamic_w", m->dynamic_w, true);
    json_number(out, "j_per_token", m->j_per_token, true);
    json_number(out, "tpj", m->tpj, true);
    json_number(out, "tpj_dynamic", m->tpj_dynamic, true);
    json_number(out, "wbl", m->wbl, true);
    json_number(out, "battery_wh", m->battery_wh, true);
    json_number(out, "tokens_per_word", m->tokens_per_word, true);
    json_number(out, "max_temp_c", m->max_temp_c, true);
    fprintf(out, "\"throttled\": %s, \"energy_partial\": %s}\n", m->throttled ? "true" : "false",
            m->energy_partial ? "true" : "false");
    return ferror(out) ? -1 : 0;
}
