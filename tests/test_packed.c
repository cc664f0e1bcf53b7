/* Packed weights (kernels/packed.h): KERN_PACKED_Q4_0_16, KERN_PACKED_Q8_0_16, KERN_PACKED_Q4_K_16 and
 * KERN_PACKED_Q2_K_16 through kern_matmul.
 *  - every family's packed kernel is bit-identical to the scalar packed reference (same integer sums,
 *    same fmaf order), for 1..19 tokens (tile edges), row counts with and without a tail of file-layout
 *    rows (16..16k+15), 1..many blocks, several seeds, 1..3 threads;
 *  - packed results equal the file-layout matmul within the float-order bound of the Q4_0 dot
 *    (|d| <= 1e-5 * sum |w_i a_i| over the row, the same bound the dot kernels are tested with);
 *  - packing keeps the bytes of the tail rows and refuses what it cannot pack. */
#include "harness.h"
#include "kernels.h"
#include "packed.h"
#include "blocks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void make_w(uint32_t type, uint64_t *st, int64_t ne0, int64_t ne1, uint8_t *w, float *wf) {
    for (int64_t i = 0; i < ne0 * ne1; i++) wf[i] = t_rand_normal(st) * (i % 97 == 0 ? 8.0f : 1.0f);
    quant_traits(type)->quantize(wf, w, ne1, ne0, NULL);
    quant_traits(type)->to_float(w, wf, ne0 * ne1);   /* wf = the exact weight values */
}

static void run_case(uint32_t type, int64_t ne0, int64_t ne1, int n_tok, uint64_t seed, llmpi_pool *const pools[3]) {
    const uint32_t layout = type == LLMPI_TYPE_Q4_0 ? KERN_PACKED_Q4_0_16
                            : type == LLMPI_TYPE_Q8_0 ? KERN_PACKED_Q8_0_16
                            : type == LLMPI_TYPE_Q4_K ? KERN_PACKED_Q4_K_16 : KERN_PACKED_Q2_K_16;
    t_begin("packed %s: %lld x %lld, %d tokens, seed %llu", quant_type_name(type), (long long)ne0, (long long)ne1,
            n_tok, (unsigned long long)seed);
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + 7;
    const size_t row_bytes = quant_row_size(type, ne0), wbytes = row_bytes * (size_t)ne1;
    uint8_t *wfile = malloc(wbytes), *wpacked = aligned_alloc(64, (wbytes + 63) / 64 * 64);
    float *wf = malloc((size_t)(ne0 * ne1) * sizeof(float)), *x = malloc((size_t)(ne0 * n_tok) * sizeof(float));
    float *y_file = malloc((size_t)(ne1 * n_tok) * sizeof(float)), *y_ref = malloc((size_t)(ne1 * n_tok) * sizeof(float));
    float *y = malloc((size_t)(ne1 * n_tok) * sizeof(float));
    if (!wfile || !wpacked || !wf || !x || !y_file || !y_ref || !y) { CHECK(0, "out of memory"); goto done; }
    make_w(type, &st, ne0, ne1, wfile, wf);
    for (int64_t i = 0; i < ne0 * n_tok; i++) x[i] = t_rand_normal(&st);

    kern_matrix wm = { .data = wfile, .type = type, .ne0 = ne0, .ne1 = ne1, .row_bytes = row_bytes,
                       .tensor_scale = 1.0f };
    kern_matrix wp = wm;
    CHECK(kern_packed_bytes(&wp, layout) == wbytes, "packed size is not the file size");
    CHECK(kern_pack_matrix(&wp, layout, wpacked) == 0 && wp.packed == layout &&
          wp.data == wpacked, "pack failed");
    const size_t tail = (size_t)(ne1 / KERN_PACK_ROWS) * KERN_PACK_ROWS * row_bytes;
    CHECK(memcmp(wpacked + tail, wfile + tail, wbytes - tail) == 0, "tail rows changed");
    CHECK(kern_pack_matrix(&wp, layout, wpacked) == -1, "packed twice");
    kern_matrix other = wm;
    for (uint32_t l = KERN_PACKED_Q4_0_16; l <= KERN_PACKED_Q2_K_16; l++)
        if (l != layout) CHECK(kern_pack_matrix(&other, l, wpacked) == -1, "packed into layout %u", l);

    void *scratch = malloc(kern_matmul_scratch_bytes(&wp, n_tok) + kern_matmul_scratch_bytes(&wm, n_tok));
    if (!scratch) { CHECK(0, "out of memory"); goto done; }
    /* references: the scalar family, file layout and packed layout */
    CHECK(kern_set_impl("scalar") == 0, "scalar family");
    kern_matmul(pools[0], &wm, x, n_tok, y_file, ne1, scratch);
    kern_matmul(pools[0], &wp, x, n_tok, y_ref, ne1, scratch);
    int far = 0;
    for (int t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < ne1; r++) {
            double mag = 0;
            for (int64_t i = 0; i < ne0; i++) mag += fabs((double)wf[r * ne0 + i] * x[t * ne0 + i]);
            const double d = fabs((double)y_ref[t * ne1 + r] - y_file[t * ne1 + r]);
            far += d > 1e-5 * mag + 1e-30;
        }
    CHECK(far == 0, "%d outputs of the packed reference are off the file-layout result", far);
    const char *fams[] = { "avx512", "avx2", "neon", "neon-dotprod", "scalar" };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        if (kern_set_impl(fams[f]) != 0) continue;
        for (int p = 0; p < 3; p++) {
            memset(y, 0xFF, (size_t)(ne1 * n_tok) * sizeof(float));
            kern_matmul(pools[p], &wp, x, n_tok, y, ne1, scratch);
            /* packed rows: bit-exact with the packed reference; tail rows: the family's own dot
             * kernels, bit-exact with its file-layout run */
            int bad = 0;
            for (int t = 0; t < n_tok; t++)
                for (int64_t r = 0; r < ne1 / KERN_PACK_ROWS * KERN_PACK_ROWS; r++)
                    bad += memcmp(&y[t * ne1 + r], &y_ref[t * ne1 + r], sizeof(float)) != 0;
            CHECK(bad == 0, "%s, %d threads: %d packed outputs differ from the packed reference", fams[f], p + 1, bad);
        }
    }
    kern_set_impl("auto");
    free(scratch);
done:
    free(wfile); free(wpacked); free(wf); free(x); free(y_file); free(y_ref); free(y);
    t_end();
}

static void check_layout_choice(void) {
    t_begin("kern_pack_layout: only types with a packed layout, >= 16 rows, a family with packed kernels");
    kern_matrix q = { .data = NULL, .type = LLMPI_TYPE_Q4_0, .ne0 = 64, .ne1 = 32,
                      .row_bytes = quant_row_size(LLMPI_TYPE_Q4_0, 64), .tensor_scale = 1.0f };
    kern_matrix q8 = q;
    q8.type = LLMPI_TYPE_Q4_1;
    q8.row_bytes = quant_row_size(LLMPI_TYPE_Q4_1, 64);
    kern_matrix small = q;
    small.ne1 = 15;
    CHECK(kern_pack_layout(&q8) == KERN_PACKED_NONE, "Q4_1 has no packed layout");
    CHECK(kern_pack_layout(&small) == KERN_PACKED_NONE, "15 rows packed");
    CHECK(kern_packed_bytes(&small, KERN_PACKED_Q4_0_16) == 0, "15 rows packable");
    CHECK(kern_set_impl("scalar") == 0, "scalar family");
    CHECK(kern_pack_layout(&q) == KERN_PACKED_NONE, "packing chosen for the scalar family");
    /* which packed kernel each usable family runs (run_case compares them all with the reference);
     * the SIMD families that have packed kernels must hand out their own, not the reference */
    const char *fams[] = { "avx512", "avx2", "neon", "neon-dotprod", "scalar" };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        if (kern_set_impl(fams[f]) != 0) continue;
        for (uint32_t l = KERN_PACKED_Q4_0_16; l <= KERN_PACKED_Q2_K_16; l++) {
            const char *fimpl = NULL;
            kern_packed_kernel(l, &fimpl);
            printf("# family %s, packed layout %u: kernel %s\n", fams[f], l, fimpl);
            const bool own = strcmp(fams[f], "avx512") == 0 || strcmp(fams[f], "neon") == 0 ||
                             strcmp(fams[f], "neon-dotprod") == 0;
            if (own) CHECK(strcmp(fimpl, fams[f]) == 0, "family %s runs the %s packed kernel", fams[f], fimpl);
        }
    }
    kern_set_impl("auto");
    const char *impl = NULL;
    kern_packed_q4_0_kernel(&impl);
    printf("# packed Q4_0 kernel of the best family here: %s (layout %u)\n", impl, kern_pack_layout(&q));
    CHECK(kern_pack_layout(&q) == (strcmp(impl, "scalar") ? KERN_PACKED_Q4_0_16 : KERN_PACKED_NONE),
          "layout choice disagrees with the kernel");
    t_end();
}

int main(void) {
    llmpi_pool *pools[3] = { pool_create(1), pool_create(2), pool_create(3) };
    check_layout_choice();
    const int64_t rows[] = { 16, 21, 48, 16 * 9 + 15 };
    const int64_t cols[] = { 32, 96, 2048 };
    uint64_t seed = 1;
    for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
        for (size_t ci = 0; ci < sizeof cols / sizeof cols[0]; ci++) {
            const int toks[] = { 1, 4, 8, 9, 19 };
            run_case(LLMPI_TYPE_Q4_0, cols[ci], rows[ri], toks[(ri + ci) % 5], seed++, pools);
            run_case(LLMPI_TYPE_Q8_0, cols[ci], rows[ri], toks[(ri + ci + 2) % 5], seed++, pools);
        }
    const int64_t cols_k[] = { 256, 768, 2048 };   /* Q4_K: 1, 3 and 8 super-blocks */
    for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
        for (size_t ci = 0; ci < sizeof cols_k / sizeof cols_k[0]; ci++) {
            const int toks[] = { 1, 3, 5, 8, 19 };
            run_case(LLMPI_TYPE_Q4_K, cols_k[ci], rows[ri], toks[(ri + ci) % 5], seed++, pools);
            run_case(LLMPI_TYPE_Q2_K, cols_k[ci], rows[ri], toks[(ri + ci + 1) % 5], seed++, pools);
        }
    for (int n = 1; n <= 17; n++) {   /* every tile edge */
        run_case(LLMPI_TYPE_Q4_K, 512, 37, n, seed++, pools);
        run_case(LLMPI_TYPE_Q2_K, 512, 37, n, seed++, pools);
        run_case(LLMPI_TYPE_Q4_0, 64, 37, n, seed++, pools);
        run_case(LLMPI_TYPE_Q8_0, 96, 37, n, seed++, pools);
    }
    for (int i = 0; i < 3; i++) pool_free(pools[i]);
    return t_summary();
}
