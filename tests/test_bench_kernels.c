/* bench_kernels (`make bench`, tests/bench_kernels.c) runs and prints a well-formed table.
 *
 * Tiny settings (512 x 64 matrix, 8 MiB roofline buffer, --quick) so it stays fast under qemu and
 * ASan; the figures themselves are not checked, only that they are real measurements: positive,
 * min <= median, and GB/s, GOP/s and %BW consistent with the printed median and shape. The kernel
 * column must name the path kern_matmul takes in this process (same CPU, same build): the float GEMM
 * tiles, or the family kern_vec_dot_impl() reports with "+dot4" exactly when the batch is >= 4 and
 * the type has a 4-column kernel (expected_path); ternary "lut" rows name kern_ternary_impl(). Every requested
 * (type, batch, threads) combination must appear (once per variant). Bad options exit 2, an unusable shape 1. */
#include "harness.h"
#include "kernels.h"
#include "quant.h"
#include "ternary.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char bench_path[1024];

/* Runs bench_kernels with args; stderr discarded when stdout_only (CSV must parse as a whole). */
static char *run_bench(const char *args, bool stdout_only, int *status) {
    const char *run = getenv("LLMPI_RUN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "{ %s%s%s %s%s; }", run && *run ? run : "", run && *run ? " " : "", bench_path, args,
             stdout_only ? " 2>/dev/null" : "");
    char *out = NULL;
    *status = t_run(cmd, &out);
    return out ? out : calloc(1, 1);
}

/* Splits one line (modified in place) at sep, or at runs of spaces when sep == ' '. */
static int split(char *line, char sep, char **f, int max) {
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        if (sep == ' ') { while (*p == ' ') p++; if (!*p) break; }
        f[n++] = p;
        while (*p && *p != sep) p++;
        if (*p) *p++ = 0;
    }
    return n;
}

static bool near(double got, double want, double rel, double abs_tol) {
    return fabs(got - want) <= rel * fabs(want) + abs_tol;
}

/* The path rule of bench_kernels.c (bench_path_name), restated from kernels/matmul.c: float GEMM
 * tiles for F32/F16/BF16 batches >= 2; the other ternary activation scheme runs the scalar reference
 * unless a family has that pair; else the type's dot family, "+dot4" when batch >= 4 and it has one. */
static void expected_path(char *buf, size_t size, uint32_t t, uint32_t act, int batch) {
    const kern_matrix m = { .type = t, .ne0 = 512, .ne1 = 64, .row_bytes = quant_row_size(t, 512),
                            .tensor_scale = 1.0f, .act_type = act };
    if (batch >= 2 && kern_gemm_float_available(&m))
        snprintf(buf, size, "gemm-%s", kern_gemm_float_impl());
    else if (act)
        snprintf(buf, size, "%s", kern_vec_dot_for(t, act) == quant_vec_dot_for(t, act) ? "scalar-ref" : kern_get_impl());
    else
        snprintf(buf, size, "%s%s", kern_vec_dot_impl(t), batch >= 4 && kern_vec_dot_4(t) ? "+dot4" : "");
}

static const char *const csv_header =
    "type,ne0,ne1,batch,threads,kernel,variant,median_ms,min_ms,gb_s,gop_s,pct_bw,bw_gb_s,reps";

/* Weight types bench_kernels runs by default: every type with a vec_dot and a quantizer. */
static int default_types(uint32_t *out) {
    int n = 0;
    for (uint32_t t = 0; t < LLMPI_TYPE_COUNT; t++) {
        const quant_type_traits *tr = quant_traits(t);
        if (tr && !tr->is_activation_only && tr->vec_dot && tr->quantize) out[n++] = t;
    }
    return n;
}

static void test_csv_table(void) {
    t_begin("bench_kernels --quick --csv: every row well-formed and self-consistent");
    int st;
    char *out = run_bench("--quick --csv --act-cross --shape 512x64 --batches 1,3,5 --threads 1,2 --bw-mib 8", true, &st);
    CHECK(st == 0, "exit status %d; output:\n%s", st, out);
    uint32_t types[LLMPI_TYPE_COUNT];
    const int n_types = default_types(types);
    int seen[LLMPI_TYPE_COUNT][3][2] = { { { 0 } } };  /* [type][batch 1, 3, 5][threads 1, 2] */
    int n_rows = 0, n_cross = 0, n_lut = 0;
    bool header_ok = false;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!header_ok) {
            header_ok = strcmp(line, csv_header) == 0;
            CHECK(header_ok, "first line is not the CSV header: %s", line);
            if (!header_ok) break;
            continue;
        }
        char copy[512];
        snprintf(copy, sizeof copy, "%s", line);
        char *f[20];
        const int nf = split(copy, ',', f, 20);
        CHECK(nf == 14, "row has %d fields, want 14: %s", nf, line);
        if (nf != 14) continue;
        n_rows++;
        const int t = quant_type_from_name(f[0]);
        const quant_type_traits *tr = t >= 0 ? quant_traits((uint32_t)t) : NULL;
        CHECK(tr && !tr->is_activation_only, "bad type: %s", line);
        if (!tr) continue;
        const long ne0 = strtol(f[1], NULL, 10), ne1 = strtol(f[2], NULL, 10);
        const int batch = atoi(f[3]), threads = atoi(f[4]);
        const double med = atof(f[7]), mn = atof(f[8]), gbs = atof(f[9]), gops = atof(f[10]), pct = atof(f[11]),
                     bw = atof(f[12]);
        const int reps = atoi(f[13]);
        CHECK(ne0 == 512 && ne1 == 64, "shape %ld x %ld: %s", ne0, ne1, line);
        CHECK((batch == 1 || batch == 3 || batch == 5) && (threads == 1 || threads == 2), "batch/threads: %s", line);
        if (!(batch == 1 || batch == 3 || batch == 5) || !(threads == 1 || threads == 2)) continue;
        CHECK(strcmp(f[6], "plain") == 0 || strcmp(f[6], "mad") == 0 || strcmp(f[6], "lut") == 0 ||
              strcmp(f[6], "packed") == 0 || strstr(f[6], "act:") != NULL, "variant: %s", line);
        CHECK(med > 0 && mn > 0 && mn <= med, "times: %s", line);
        CHECK(gbs > 0 && gops > 0 && pct > 0 && bw > 0, "rates must be > 0: %s", line);
        CHECK(reps >= 3, "reps %d < 3: %s", reps, line);
        /* the rates follow from the median and the shape (printed rounding: 6 decimals of ms) */
        const double sec = med * 1e-3;
        CHECK(near(gbs, (double)quant_row_size((uint32_t)t, ne0) * (double)ne1 / sec / 1e9, 0.02, 2e-4),
              "GB/s %.4f inconsistent: %s", gbs, line);
        CHECK(near(gops, 2.0 * (double)ne0 * (double)ne1 * batch / sec / 1e9, 0.02, 2e-4), "GOP/s inconsistent: %s", line);
        CHECK(near(pct, 100.0 * gbs / bw, 0.01, 0.02), "%%BW inconsistent: %s", line);
        /* kernel column = the path kern_matmul takes in this process (same CPU and build) */
        const char *act = strstr(f[6], "act:");
        const int a = act ? quant_type_from_name(act + 4) : 0;
        CHECK(a >= 0, "variant names an unknown type: %s", line);
        char want[64];
        if (strcmp(f[6], "lut") == 0) {   /* LUT mode: kern_tl1_matmul, named by kern_ternary_impl */
            kern_set_ternary_mode("lut");
            snprintf(want, sizeof want, "%s", kern_ternary_impl((uint32_t)t));
            kern_set_ternary_mode("auto");
            n_lut++;
        } else {
            expected_path(want, sizeof want, (uint32_t)t, a > 0 ? (uint32_t)a : 0, batch);
        }
        CHECK(strcmp(f[5], want) == 0, "kernel '%s', want '%s': %s", f[5], want, line);
        if (a > 0) { n_cross++; continue; }
        seen[t][batch / 2][threads == 2]++;
    }
    CHECK(header_ok, "no CSV header in output:\n%.2000s", out);
    for (int i = 0; i < n_types; i++)
        for (int b = 0; b < 3; b++)
            for (int h = 0; h < 2; h++)
                /* one row per variant: 1 ("plain"), or one per ternary mode / packing variant */
                CHECK(seen[types[i]][b][h] >= 1 && seen[types[i]][b][h] <= 4, "%s batch %d threads %d: %d rows",
                      quant_type_name(types[i]), 2 * b + 1, h + 1, seen[types[i]][b][h]);
    CHECK(n_rows >= n_types * 6, "%d rows for %d types", n_rows, n_types);
    /* --act-cross: TQ1_0, TQ2_0 and I2_S once more (other activation scheme) x 3 batches x 2 thread counts */
    int want_cross = 0;
    const uint32_t ternary[3][2] = { { LLMPI_TYPE_TQ1_0, LLMPI_TYPE_I8_S }, { LLMPI_TYPE_TQ2_0, LLMPI_TYPE_I8_S },
                                     { LLMPI_TYPE_I2_S, LLMPI_TYPE_Q8_K } };
    for (int i = 0; i < 3; i++) want_cross += kern_vec_dot_for(ternary[i][0], ternary[i][1]) ? 6 : 0;
    CHECK(n_cross == want_cross && want_cross > 0, "%d act-cross rows, want %d", n_cross, want_cross);
    /* ternary types in both modes (kern_set_ternary_mode): a "lut" row per batch and thread count */
    CHECK(n_lut == 3 * 6, "%d lut rows, want 18 (TQ1_0, TQ2_0, I2_S x 3 batches x 2 thread counts)", n_lut);
    free(out);
    t_end();
}

static void test_text_table(void) {
    t_begin("bench_kernels --quick text table: roofline lines and an 11-column row per case");
    int st;
    char *out = run_bench("--quick --shape 512x64 --types q4_0,Q8_0 --batches 1,4 --threads 1 --bw-mib 8", false, &st);
    CHECK(st == 0, "exit status %d; output:\n%s", st, out);
    /* roofline line: "... median of N passes: 1 thread X GB/s" with X > 0, before and after */
    const char *r = strstr(out, "# roofline: read bandwidth of a 8 MiB buffer");
    CHECK(r != NULL, "no roofline line:\n%s", out);
    const char *g = r ? strstr(r, " 1 thread ") : NULL;
    CHECK(g && atof(g + 10) > 0, "roofline figure missing or not > 0:\n%s", out);
    CHECK(strstr(out, "# roofline again after the kernels") != NULL, "no second roofline line:\n%s", out);
    int n_rows = 0, header = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char copy[512];
        snprintf(copy, sizeof copy, "%s", line);
        char *f[20];
        const int nf = split(copy, ' ', f, 20);
        if (strcmp(f[0], "type") == 0) {
            header++;
            CHECK(nf == 11 && strcmp(f[10], "%BW") == 0 && strcmp(f[6], "median_ms") == 0, "header: %s", line);
            continue;
        }
        CHECK(nf == 11, "row has %d columns, want 11: %s", nf, line);
        if (nf != 11) continue;
        n_rows++;
        CHECK(strcmp(f[0], "Q4_0") == 0 || strcmp(f[0], "Q8_0") == 0, "type: %s", line);
        CHECK(strcmp(f[1], "512x64") == 0, "shape: %s", line);
        /* 2 decimals: a GEMM's GB/s and %BW can print as 0.00 under qemu, so those are checked on matvecs */
        CHECK(atof(f[7]) > 0 && atof(f[9]) > 0, "min and GOP/s must be > 0: %s", line);
        CHECK(atoi(f[2]) != 1 || (atof(f[8]) > 0 && atof(f[10]) > 0), "matvec GB/s and %%BW must be > 0: %s", line);
        CHECK(atoi(f[2]) == 1 || atoi(f[2]) == 4, "batch: %s", line);
        CHECK(atof(f[6]) > 0 && atof(f[6]) >= atof(f[7]) - 1e-3, "min > median: %s", line);
    }
    CHECK(header == 1, "%d header lines", header);
    CHECK(n_rows == 4, "%d rows, want 2 types x 2 batches", n_rows);
    free(out);
    t_end();
}

/* --family all: one row per family that implements Q4_0 itself, and its name in the kernel column. */
static void test_family_all(void) {
    t_begin("bench_kernels --family all: a row per family implementing Q4_0");
    static const char *const fams[] = { "scalar", "avx2", "avx512", "neon", "neon-dotprod" };
    int want = 0;
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        if (kern_set_impl(fams[i]) == 0 && strcmp(kern_vec_dot_impl(LLMPI_TYPE_Q4_0), fams[i]) == 0) want |= 1 << i;
    kern_set_impl("auto");
    int st;
    char *out = run_bench("--quick --csv --family all --shape 256x16 --batches 1 --threads 1 --types q4_0 --bw-mib 8",
                          true, &st);
    CHECK(st == 0, "exit status %d; output:\n%s", st, out);
    int got = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[20];
        if (split(line, ',', f, 20) != 14 || strcmp(f[0], "Q4_0") != 0) continue;
        for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
            if (strcmp(f[5], fams[i]) == 0) { CHECK(!(got & (1 << i)), "family %s twice", fams[i]); got |= 1 << i; }
    }
    CHECK(got == want && (want & 1), "families printed 0x%x, want 0x%x (bit 0 = scalar)", got, want);
    free(out);
    t_end();
}

static void expect_status(const char *args, int want_status, const char *want_msg) {
    t_begin("bench_kernels %s -> exit %d", args, want_status);
    int st;
    char *out = run_bench(args, false, &st);
    CHECK(st == want_status, "exit status %d, want %d; output:\n%s", st, want_status, out);
    CHECK(strstr(out, want_msg) != NULL, "output lacks '%s':\n%s", want_msg, out);
    free(out);
    t_end();
}

int main(int argc, char **argv) {
    /* bench_kernels is built next to this test binary (build/.../tests/). */
    const char *slash = strrchr(argv[0], '/');
    snprintf(bench_path, sizeof bench_path, "%.*sbench_kernels", slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
    test_csv_table();
    test_text_table();
    test_family_all();
    expect_status("--types q8_k", 2, "not a weight type");
    expect_status("--family no-such-family", 2, "kernel family 'no-such-family'");
    expect_status("--threads 0", 2, "bad --threads");
    expect_status("--quick --shape 100x8 --types q4_k --threads 1 --bw-mib 8", 1, "not a multiple of 256");
    return t_summary();
}
