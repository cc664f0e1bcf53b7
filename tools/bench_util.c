/* Shared helpers of llmpi-bench and llmpi-perplexity; see bench_util.h. */
#include "bench_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- statistics ----------------------------------------------------------------------------- */
double bench_mean(const double *v, int n) {
    if (n <= 0) return NAN;
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s / n;
}

double bench_stddev(const double *v, int n) {
    if (n < 2) return 0;
    const double m = bench_mean(v, n);
    double s = 0;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    return sqrt(s / (n - 1));
}

double bench_percentile_sorted(const float *sorted, size_t n, double fraction) {
    if (n == 0) return NAN;
    if (fraction <= 0) return sorted[0];
    if (fraction >= 1) return sorted[n - 1];
    double p = fraction * (double)(n - 1);
    size_t ip = (size_t)p;
    p -= (double)ip;
    size_t next = ip + 1 < n ? ip + 1 : n - 1;
    return (1 - p) * sorted[ip] + p * sorted[next];
}

/* ---- energy --------------------------------------------------------------------------------- */
void bench_energy_init(bench_energy *e) {
    memset(e, 0, sizeof *e);
    snprintf(e->power_source, sizeof e->power_source, "none");
    e->energy_j = e->avg_w = e->static_w = e->dynamic_w = NAN;
    e->j_per_token = e->tpj = e->tpj_dynamic = e->wbl = NAN;
    e->max_temp_c = NAN;
    e->battery_wh = 5.0;        /* tools/power.h defaults, stated next to W/BL */
    e->tokens_per_word = 1.5;
}

bool bench_energy_available(const bench_energy *e) { return isfinite(e->energy_j); }

/* ---- text output ---------------------------------------------------------------------------- */
void bench_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20) fprintf(out, "\\u%04x", *p);
            else fputc(*p, out);
        }
    }
    fputc('"', out);
}

void bench_json_number(FILE *out, double v) {
    if (!isfinite(v)) fputs("null", out);
    else if (v == floor(v) && fabs(v) < 9e15) fprintf(out, "%.0f", v);
    else fprintf(out, "%.9g", v);
}

void bench_csv_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '"') fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

void bench_csv_number(FILE *out, double v) {
    if (!isfinite(v)) return;
    if (v == floor(v) && fabs(v) < 9e15) fprintf(out, "%.0f", v);
    else fprintf(out, "%.9g", v);
}

void bench_format_size(char *buf, size_t len, uint64_t bytes) {
    const double b = (double)bytes;
    if (b >= 1024.0 * 1024 * 1024) snprintf(buf, len, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else snprintf(buf, len, "%.2f MiB", b / (1024.0 * 1024));
}

void bench_format_params(char *buf, size_t len, uint64_t n) {
    const double v = (double)n;
    if (v >= 1e9) snprintf(buf, len, "%.2f B", v / 1e9);
    else snprintf(buf, len, "%.2f M", v / 1e6);
}

void bench_format_params_short(char *buf, size_t len, uint64_t n) {
    const double v = (double)n;
    if (v >= 1e9) snprintf(buf, len, "%.1fB", v / 1e9);
    else if (v >= 1e6) snprintf(buf, len, "%.1fM", v / 1e6);
    else snprintf(buf, len, "%.1fK", v / 1e3);
}

/* ---- models --------------------------------------------------------------------------------- */
/* llama.cpp ftype / tensor type names that appear in file names. */
static const char *const quant_names[] = {
    "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M",
    "IQ4_NL", "IQ4_XS", "Q2_K_S", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q3_K", "Q4_K_S", "Q4_K_M", "Q4_K",
    "Q5_K_S", "Q5_K_M", "Q5_K", "Q6_K", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "TQ1_0", "TQ2_0", "I2_S",
    "TL1", "TL2", "MXFP4", "BF16", "F16", "F32",
};

static bool is_name_sep(char c) { return c == '-' || c == '_' || c == '.' || c == ' '; }

static const char *base_name_of(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Finds the longest known quant name in `name` delimited by separators or the ends.
 * Returns its index in quant_names (or -1) and the match position/length. */
static int find_quant_name(const char *name, size_t name_len, size_t *pos, size_t *mlen) {
    int best = -1;
    size_t best_len = 0;
    for (size_t k = 0; k < sizeof quant_names / sizeof quant_names[0]; k++) {
        const size_t ql = strlen(quant_names[k]);
        for (size_t i = 0; i + ql <= name_len; i++) {
            if (strncasecmp(name + i, quant_names[k], ql) != 0) continue;
            const bool left_ok = i == 0 || is_name_sep(name[i - 1]);
            const bool right_ok = i + ql == name_len || is_name_sep(name[i + ql]);
            if (left_ok && right_ok && ql > best_len) {
                best = (int)k;
                best_len = ql;
                *pos = i;
                *mlen = ql;
            }
        }
    }
    return best;
}

static size_t stem_length(const char *base) {
    size_t n = strlen(base);
    if (n > 5 && strcasecmp(base + n - 5, ".gguf") == 0) n -= 5;
    return n;
}

void bench_quant_label(const char *path, const char *type_mix, char *out, size_t len) {
    const char *base = base_name_of(path ? path : "");
    size_t pos = 0, mlen = 0;
    int k = find_quant_name(base, stem_length(base), &pos, &mlen);
    if (k >= 0) {
        snprintf(out, len, "%s", quant_names[k]);
        return;
    }
    /* Type mix "NAME:COUNT NAME:COUNT ...": the non-F32 type with the most tensors. */
    char best[32] = "F32";
    long best_count = 0;
    const char *p = type_mix ? type_mix : "";
    while (*p) {
        while (*p == ' ') p++;
        const char *colon = strchr(p, ':');
        if (!colon) break;
        char name[32];
        size_t nl = (size_t)(colon - p) < sizeof name - 1 ? (size_t)(colon - p) : sizeof name - 1;
        memcpy(name, p, nl);
        name[nl] = 0;
        char *end;
        long count = strtol(colon + 1, &end, 10);
        if (strcmp(name, "F32") != 0 && count > best_count) {
            best_count = count;
            snprintf(best, sizeof best, "%s", name);
        }
        p = end;
        while (*p && *p != ' ') p++;
    }
    snprintf(out, len, "%s", best);
}

void bench_model_base_name(const char *path, const char *quant_label, char *out, size_t len) {
    const char *base = base_name_of(path ? path : "");
    const size_t n = stem_length(base);
    size_t pos = 0, mlen = 0;
    char buf[512];
    size_t bl = 0;
    if (find_quant_name(base, n, &pos, &mlen) >= 0 && quant_label && strncasecmp(base + pos, quant_label, mlen) == 0) {
        /* Drop the label with the separator before it (or after it, at the start of the name). */
        size_t cut_from = pos, cut_to = pos + mlen;
        if (cut_from > 0) cut_from--;
        else if (cut_to < n) cut_to++;
        for (size_t i = 0; i < n && bl + 1 < sizeof buf; i++)
            if (i < cut_from || i >= cut_to) buf[bl++] = base[i];
    } else {
        for (size_t i = 0; i < n && bl + 1 < sizeof buf; i++) buf[bl++] = base[i];
    }
    while (bl > 0 && is_name_sep(buf[bl - 1])) bl--;
    buf[bl] = 0;
    snprintf(out, len, "%s", bl ? buf : base);
}

const char *bench_paper_column(const char *q) {
    if (!strcmp(q, "F32") || !strcmp(q, "F16") || !strcmp(q, "BF16")) return "FP";
    return q;
}

bool bench_peak_rss_reset(void) {
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, "5", 1) == 1;  /* "5": reset the peak RSS (VmHWM) to the current RSS */
    close(fd);
    return ok;
}

uint64_t bench_peak_rss_read(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kib = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kib = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib * 1024u;
}

void bench_sleep(double seconds) {
    if (!(seconds > 0)) return;
    struct timespec ts = { (time_t)seconds, (long)((seconds - floor(seconds)) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- SVG chart ------------------------------------------------------------------------------ */
static void xml_text(FILE *out, const char *s) {
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            if ((unsigned char)*p >= 0x20 || *p == '\t' || *p == '\n') fputc(*p, out);
        }
    }
}

/* Index of s in list (appending it if new). */
static int intern(const char **list, int *n, const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i], s)) return i;
    list[*n] = s;
    return (*n)++;
}

/* Smallest 1/2/5 x 10^k step giving at most ~5 ticks up to vmax. */
static double nice_step(double vmax) {
    if (!(vmax > 0)) return 1;
    double raw = vmax / 5, mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

int bench_write_svg(FILE *out, const char *title, const bench_bar *bars, int n_bars) {
    static const char *const palette[] = { "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac" };
    const int n_pal = (int)(sizeof palette / sizeof palette[0]);
    const char **panels = calloc((size_t)n_bars + 1, sizeof *panels);
    const char **series = calloc((size_t)n_bars + 1, sizeof *series);
    const char **groups = calloc((size_t)n_bars + 1, sizeof *groups);
    if (!panels || !series || !groups) { free(panels); free(series); free(groups); return -1; }
    int n_panels = 0, n_series = 0;
    for (int i = 0; i < n_bars; i++) {
        if (!isfinite(bars[i].value)) continue;
        intern(panels, &n_panels, bars[i].panel);
        intern(series, &n_series, bars[i].series);
    }
    const double width = 960, panel_h = 340, top = 60, legend_h = 24.0 * ((n_series + 5) / 6);
    const double left = 80, right = 30, plot_top_pad = 40, plot_bottom_pad = 70;
    const double height = top + legend_h + (n_panels ? n_panels : 1) * panel_h + 20;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "font-family=\"sans-serif\" font-size=\"12\">\n", width, height, width, height);
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", width, height);
    fprintf(out, "<text x=\"%.0f\" y=\"28\" font-size=\"18\" text-anchor=\"middle\" font-weight=\"bold\">", width / 2);
    xml_text(out, title);
    fprintf(out, "</text>\n");

    /* Legend: six entries per row. */
    fprintf(out, "<g class=\"legend\">\n");
    for (int s = 0; s < n_series; s++) {
        const double x = left + (s % 6) * 140.0, y = top + (s / 6) * 24.0;
        fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"%s\"/>", x, y, palette[s % n_pal]);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", x + 20, y + 12);
        xml_text(out, series[s]);
        fprintf(out, "</text>\n");
    }
    fprintf(out, "</g>\n");
    if (n_panels == 0) {
        fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">no data</text>\n", width / 2, top + legend_h + 40);
    }

    for (int pi = 0; pi < n_panels; pi++) {
        const double y0 = top + legend_h + pi * panel_h;            /* panel top */
        const double plot_y = y0 + plot_top_pad, plot_h = panel_h - plot_top_pad - plot_bottom_pad;
        const double plot_w = width - left - right;
        int n_groups = 0;
        double vmax = 0;
        for (int i = 0; i < n_bars; i++) {
            if (strcmp(bars[i].panel, panels[pi]) || !isfinite(bars[i].value)) continue;
            intern(groups, &n_groups, bars[i].group);
            double top_v = bars[i].value + (isfinite(bars[i].error) ? bars[i].error : 0);
            if (top_v > vmax) vmax = top_v;
        }
        const double step = nice_step(vmax);
        const double ymax = step * ceil((vmax > 0 ? vmax : 1) / step);
        fprintf(out, "<g class=\"panel\" data-panel=\"");
        xml_text(out, panels[pi]);
        fprintf(out, "\">\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", left, y0 + 24);
        xml_text(out, panels[pi]);
        fprintf(out, "</text>\n");
        /* Axes and grid lines with tick labels. */
        for (double t = 0; t <= ymax * (1 + 1e-9); t += step) {
            const double y = plot_y + plot_h - t / ymax * plot_h;
            fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                    left, y, left + plot_w, y, left - 6, y + 4, t);
        }
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>\n", left, plot_y + plot_h,
                left + plot_w, plot_y + plot_h);
        const double group_w = plot_w / (n_groups ? n_groups : 1);
        for (int g = 0; g < n_groups; g++) {
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + (g + 0.5) * group_w,
                    plot_y + plot_h + 18);
            xml_text(out, groups[g]);
            fprintf(out, "</text>\n");
        }
        /* Bars, one <g> per series so each series is identifiable. */
        const double bar_w = group_w * 0.8 / (n_series ? n_series : 1);
        for (int s = 0; s < n_series; s++) {
            bool open = false;
            for (int i = 0; i < n_bars; i++) {
                const bench_bar *b = &bars[i];
                if (strcmp(b->panel, panels[pi]) || strcmp(b->series, series[s]) || !isfinite(b->value)) continue;
                if (!open) {
                    fprintf(out, "<g class=\"series\" data-series=\"");
                    xml_text(out, series[s]);
                    fprintf(out, "\" fill=\"%s\">\n", palette[s % n_pal]);
                    open = true;
                }
                int g = 0;
                while (g < n_groups && strcmp(groups[g], b->group)) g++;
                const double v = b->value > 0 ? b->value : 0;
                const double h = v / ymax * plot_h;
                const double x = left + g * group_w + group_w * 0.1 + s * bar_w;
                const double y = plot_y + plot_h - h;
                fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>", x, y, bar_w * 0.92, h);
                xml_text(out, b->series);
                fputs(" / ", out);
                xml_text(out, b->group);
                fprintf(out, ": %.4g</title></rect>", b->value);
                if (isfinite(b->error) && b->error > 0) {
                    const double cx = x + bar_w * 0.46, ye = b->error / ymax * plot_h;
                    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000000\"/>", cx,
                            y - ye, cx, y + ye < plot_y + plot_h ? y + ye : plot_y + plot_h);
                }
                /* Plain decimals read faster than %g's exponents: 9679, 19.2, 3.81, 0.012. */
                const double a = fabs(b->value);
                const int decimals = a >= 100 ? 0 : a >= 10 ? 1 : a >= 0.1 ? 2 : 3;
                fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\" fill=\"#000000\">%.*f</text>\n",
                        x + bar_w * 0.46, y - 4, decimals, b->value);
            }
            if (open) fprintf(out, "</g>\n");
        }
        fprintf(out, "</g>\n");
    }
    fprintf(out, "</svg>\n");
    free(panels);
    free(series);
    free(groups);
    return ferror(out) ? -1 : 0;
}

/* ---- perplexity and KL divergence ----------------------------------------------------------- */
static float max_of(const float *x, int n, int *arg) {
    float m = x[0];
    int a = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > m) { m = x[i]; a = i; }
    if (arg) *arg = a;
    return m;
}

double bench_nll(const float *logits, int n_vocab, int32_t tok) {
    const float mx = max_of(logits, n_vocab, NULL);
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += expf(logits[i] - mx);
    return -((double)logits[tok] - mx - log(sum));
}

int bench_kld_row_u16(int n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

/* Round-to-nearest-even for the 16-bit codes (what llama.cpp's nearest_int does). */
static uint16_t code_u16(float v) {
    const float c = nearbyintf(v);
    return (uint16_t)(c < 0 ? 0 : c > 65535 ? 65535 : c);
}

double bench_kld_encode_row(const float *logits, int n_vocab, int32_t tok, uint16_t *row) {
    float mx = logits[0], mn = logits[0];
    for (int i = 1; i < n_vocab; i++) {
        if (logits[i] > mx) mx = logits[i];
        if (logits[i] < mn) mn = logits[i];
    }
    if (mn < mx - 16) mn = mx - 16;   /* codes cover the top 16 nats only */
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += expf(logits[i] - mx);
    const float log_sum_exp = (float)log(sum);
    const float min_log_prob = mn - mx - log_sum_exp;
    const float scale = (mx - mn) / 65535.0f;
    memcpy(row, &scale, sizeof scale);
    memcpy(row + 2, &min_log_prob, sizeof min_log_prob);
    uint16_t *codes = row + 4;
    const int nv = bench_kld_row_u16(n_vocab);
    memset(codes, 0, (size_t)(nv - 4) * sizeof *codes);
    if (scale != 0) {
        const float inv_scale = 1 / scale;
        for (int i = 0; i < n_vocab; i++) codes[i] = logits[i] > mn ? code_u16(inv_scale * (logits[i] - mn)) : 0;
    }
    return (double)mx + log_sum_exp - logits[tok];
}

double bench_kld_score_row(const float *logits, int n_vocab, const uint16_t *base_row, int32_t tok,
                           bench_kld_acc *acc, double *p_diff_out) {
    int imax = 0;
    const float mx = max_of(logits, n_vocab, &imax);
    double sum_exp = 0;
    for (int i = 0; i < n_vocab; i++) sum_exp += expf(logits[i] - mx);
    const double log_norm = mx + log(sum_exp);   /* log Z of the model under test */
    float scale, min_log_prob;
    memcpy(&scale, base_row, sizeof scale);
    memcpy(&min_log_prob, base_row + 2, sizeof min_log_prob);
    const uint16_t *codes = base_row + 4;

    const double nll = log_norm - logits[tok];
    const double nll_base = -((double)scale * codes[tok] + min_log_prob);
    acc->sum_nll += nll;
    acc->sum_nll2 += nll * nll;
    acc->sum_nll_base += nll_base;
    acc->sum_nll_base2 += nll_base * nll_base;
    acc->sum_nll_nll_base += nll * nll_base;

    double kld = 0, base_max = 0;
    int imax_base = 0;
    for (int i = 0; i < n_vocab; i++) {
        const double lp_base = (double)scale * codes[i] + min_log_prob;
        if (i == 0 || lp_base > base_max) { base_max = lp_base; imax_base = i; }
        if (lp_base > -16.0) kld += exp(lp_base) * (lp_base - (logits[i] - log_norm));
    }
    acc->sum_kld += kld;
    acc->sum_kld2 += kld * kld;
    acc->count++;
    if (imax == imax_base) acc->n_same_top++;
    const double p_diff = exp(-nll) - exp(-nll_base);
    acc->sum_p_diff += p_diff;
    acc->sum_p_diff2 += p_diff * p_diff;
    acc->sum_p_diff4 += p_diff * p_diff * p_diff * p_diff;
    if (fabs(p_diff) > acc->max_p_diff) acc->max_p_diff = fabs(p_diff);
    if (p_diff_out) *p_diff_out = p_diff;
    return kld;
}

void bench_mean_and_error(double sum, double sum2, size_t count, double *mean, double *error) {
    if (count < 1) { *mean = 0; *error = 0; return; }
    const double f = sum / (double)count;
    double df = sum2 / (double)count - f * f;
    *mean = f;
    *error = df > 0 && count > 10 ? sqrt(df / (double)(count - 1)) : 0;
}

/* ---- QA metrics ----------------------------------------------------------------------------- */
void bench_qa_normalize(const char *s, char *out, size_t len) {
    if (len == 0) return;
    size_t o = 0;
    const char *p = s ? s : "";
    bool first_word = true;
    while (*p) {
        /* Next whitespace-separated word, lower-cased, ASCII punctuation dropped. */
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char word[256];
        size_t wl = 0;
        while (*p && !isspace((unsigned char)*p)) {
            const unsigned char c = (unsigned char)*p++;
            if (c < 0x80 && ispunct(c)) continue;
            if (wl + 1 < sizeof word) word[wl++] = (char)(c < 0x80 ? tolower(c) : c);
        }
        word[wl] = 0;
        /* Punctuation removal can split nothing apart but may empty a word ("--"). */
        if (wl == 0 || !strcmp(word, "a") || !strcmp(word, "an") || !strcmp(word, "the")) continue;
        if (!first_word && o + 1 < len) out[o++] = ' ';
        for (size_t i = 0; i < wl && o + 1 < len; i++) out[o++] = word[i];
        first_word = false;
    }
    out[o] = 0;
}

bool bench_qa_exact_match(const char *prediction, const char *gold) {
    char a[2048], b[2048];
    bench_qa_normalize(prediction, a, sizeof a);
    bench_qa_normalize(gold, b, sizeof b);
    return strcmp(a, b) == 0;
}

/* Splits a normalized string (single spaces) in place into word pointers. */
static int split_words(char *s, char **words, int max_words) {
    int n = 0;
    char *save = NULL;
    for (char *w = strtok_r(s, " ", &save); w && n < max_words; w = strtok_r(NULL, " ", &save)) words[n++] = w;
    return n;
}

double bench_qa_f1(const char *prediction, const char *gold) {
    char a[2048], b[2048];
    bench_qa_normalize(prediction, a, sizeof a);
    bench_qa_normalize(gold, b, sizeof b);
    char *pw[512], *gw[512];
    const int np = split_words(a, pw, 512), ng = split_words(b, gw, 512);
    if (np == 0 || ng == 0) return 0;
    /* Multiset intersection: each gold word can match one prediction word. */
    bool used[512] = { false };
    int same = 0;
    for (int i = 0; i < np; i++) {
        for (int j = 0; j < ng; j++) {
            if (!used[j] && !strcmp(pw[i], gw[j])) { used[j] = true; same++; break; }
        }
    }
    if (same == 0) return 0;
    const double precision = (double)same / np, recall = (double)same / ng;
    return 2 * precision * recall / (precision + recall);
}

bool bench_qa_contains(const char *text, const char *gold) {
    char t[8192], g[2048], tt[8200], gg[2056];
    bench_qa_normalize(text, t, sizeof t);
    bench_qa_normalize(gold, g, sizeof g);
    if (!g[0]) return false;
    snprintf(tt, sizeof tt, " %s ", t);
    snprintf(gg, sizeof gg, " %s ", g);
    return strstr(tt, gg) != NULL;
}

void bench_qa_answer_span(const char *response, char *out, size_t len) {
    if (len == 0) return;
    const char *p = response ? response : "";
    while (*p && isspace((unsigned char)*p)) p++;
    size_t n = 0;
    while (p[n] && p[n] != '\n' && p[n] != '\r') n++;
    while (n > 0 && isspace((unsigned char)p[n - 1])) n--;
    if (n >= len) n = len - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

/* Minimal JSON reader for one QA line. */
typedef struct {
    const char *p;
    char *err;
    size_t errlen;
} json_reader;

static void jskip(json_reader *r) {
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r') r->p++;
}

static int jfail(json_reader *r, const char *msg) {
    snprintf(r->err, r->errlen, "%s", msg);
    return -1;
}

static void put_utf8(char *out, size_t *o, uint32_t cp) {
    if (cp < 0x80) out[(*o)++] = (char)cp;
    else if (cp < 0x800) { out[(*o)++] = (char)(0xC0 | (cp >> 6)); out[(*o)++] = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        const char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (uint32_t)d;
    }
    return 0;
}

/* Parses a JSON string at r->p into a malloc'd UTF-8 string. */
static int jstring(json_reader *r, char **out) {
    jskip(r);
    if (*r->p != '"') return jfail(r, "expected a string");
    r->p++;
    size_t cap = strlen(r->p) + 1;   /* decoded text is never longer than its escaped form */
    char *s = malloc(cap);
    if (!s) return jfail(r, "out of memory");
    size_t o = 0;
    for (;;) {
        char c = *r->p++;
        if (c == 0) { free(s); return jfail(r, "unterminated string"); }
        if (c == '"') break;
        if (c != '\\') { s[o++] = c; continue; }
        c = *r->p++;
        switch (c) {
        case '"': s[o++] = '"'; break;
        case '\\': s[o++] = '\\'; break;
        case '/': s[o++] = '/'; break;
        case 'b': s[o++] = '\b'; break;
        case 'f': s[o++] = '\f'; break;
        case 'n': s[o++] = '\n'; break;
        case 'r': s[o++] = '\r'; break;
        case 't': s[o++] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(r->p, &cp)) { free(s); return jfail(r, "bad \\u escape"); }
            r->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && r->p[0] == '\\' && r->p[1] == 'u') {
                uint32_t lo;
                if (!hex4(r->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    r->p += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;   /* lone surrogate */
            put_utf8(s, &o, cp);
            break;
        }
        default: free(s); return jfail(r, "bad escape in string");
        }
    }
    s[o] = 0;
    *out = s;
    return 0;
}

/* Skips any JSON value. */
static int jskip_value(json_reader *r, int depth) {
    jskip(r);
    if (depth > 64) return jfail(r, "nesting too deep");
    const char c = *r->p;
    if (c == '"') {
        char *s;
        if (jstring(r, &s)) return -1;
        free(s);
        return 0;
    }
    if (c == '{' || c == '[') {
        const char close = c == '{' ? '}' : ']';
        r->p++;
        jskip(r);
        if (*r->p == close) { r->p++; return 0; }
        for (;;) {
            if (c == '{') {
                char *k;
                if (jstring(r, &k)) return -1;
                free(k);
                jskip(r);
                if (*r->p++ != ':') return jfail(r, "expected ':'");
            }
            if (jskip_value(r, depth + 1)) return -1;
            jskip(r);
            if (*r->p == ',') { r->p++; continue; }
            if (*r->p == close) { r->p++; return 0; }
            return jfail(r, "expected ',' or a closing bracket");
        }
    }
    const char *start = r->p;
    while (*r->p && (isalnum((unsigned char)*r->p) || *r->p == '-' || *r->p == '+' || *r->p == '.')) r->p++;
    return r->p == start ? jfail(r, "unexpected character") : 0;
}

static int push_answer(bench_qa_item *it, char *s) {
    char **a = realloc(it->answers, (size_t)(it->n_answers + 1) * sizeof *a);
    if (!a) { free(s); return -1; }
    it->answers = a;
    it->answers[it->n_answers++] = s;
    return 0;
}

/* answers: "x" | ["x", ...] | {"text": ["x", ...], ...} */
static int janswers(json_reader *r, bench_qa_item *it, int depth) {
    jskip(r);
    if (*r->p == '"') {
        char *s;
        if (jstring(r, &s)) return -1;
        return push_answer(it, s) ? jfail(r, "out of memory") : 0;
    }
    if (*r->p == '[') {
        r->p++;
        jskip(r);
        if (*r->p == ']') { r->p++; return 0; }
        for (;;) {
            if (janswers(r, it, depth + 1)) return -1;
            jskip(r);
            if (*r->p == ',') { r->p++; continue; }
            if (*r->p == ']') { r->p++; return 0; }
            return jfail(r, "expected ',' or ']' in answers");
        }
    }
    if (*r->p == '{' && depth == 0) {
        r->p++;
        jskip(r);
        if (*r->p == '}') { r->p++; return 0; }
        for (;;) {
            char *k;
            if (jstring(r, &k)) return -1;
            jskip(r);
            if (*r->p++ != ':') { free(k); return jfail(r, "expected ':'"); }
            const bool is_text = !strcmp(k, "text");
            free(k);
            if (is_text ? janswers(r, it, depth + 1) : jskip_value(r, 1)) return -1;
            jskip(r);
            if (*r->p == ',') { r->p++; continue; }
            if (*r->p == '}') { r->p++; return 0; }
            return jfail(r, "expected ',' or '}' in answers");
        }
    }
    return jfail(r, "answers must be a string, an array of strings or {\"text\": [...]}");
}

int bench_qa_parse_line(const char *line, bench_qa_item *it, char *err, size_t errlen) {
    memset(it, 0, sizeof *it);
    json_reader r = { line, err, errlen };
    jskip(&r);
    if (*r.p != '{') { snprintf(err, errlen, "expected a JSON object"); return -1; }
    r.p++;
    jskip(&r);
    int rc = 0;
    if (*r.p == '}') r.p++;
    else {
        for (;;) {
            char *key;
            if ((rc = jstring(&r, &key))) break;
            jskip(&r);
            if (*r.p++ != ':') { free(key); rc = jfail(&r, "expected ':' after a key"); break; }
            if (!strcmp(key, "context") || !strcmp(key, "question")) {
                char **dst = key[0] == 'c' ? &it->context : &it->question;
                free(*dst);
                *dst = NULL;
                rc = jstring(&r, dst);
                if (rc) snprintf(err, errlen, "\"%s\" must be a string", key);
            } else if (!strcmp(key, "answers") || !strcmp(key, "answer")) {
                rc = janswers(&r, it, 0);
            } else {
                rc = jskip_value(&r, 1);
            }
            free(key);
            if (rc) break;
            jskip(&r);
            if (*r.p == ',') { r.p++; continue; }
            if (*r.p == '}') { r.p++; break; }
            rc = jfail(&r, "expected ',' or '}'");
            break;
        }
    }
    if (!rc) {
        jskip(&r);
        if (*r.p) rc = jfail(&r, "trailing characters after the object");
        else if (!it->context) rc = jfail(&r, "missing \"context\"");
        else if (!it->question) rc = jfail(&r, "missing \"question\"");
        else if (it->n_answers == 0) rc = jfail(&r, "missing or empty \"answers\"");
    }
    if (rc) bench_qa_item_free(it);
    return rc ? -1 : 0;
}

void bench_qa_item_free(bench_qa_item *it) {
    free(it->context);
    free(it->question);
    for (int i = 0; i < it->n_answers; i++) free(it->answers[i]);
    free(it->answers);
    memset(it, 0, sizeof *it);
}

char *bench_qa_prompt(const char *context, const char *question) {
    static const char *const fmt =
        "Based on the following context, provide a detailed and specific answer. Make sure your response fully "
        "addresses the information given:\n\nContext: %s\n\nQuestion: %s\n\nAnswer:";
    const size_t len = strlen(fmt) + strlen(context) + strlen(question) + 1;
    char *s = malloc(len);
    if (s) snprintf(s, len, fmt, context, question);
    return s;
}
