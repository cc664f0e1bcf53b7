/* Weight quantizers (the llmpi-quantize path): f32 rows -> packed blocks.
 *
 * Without an importance matrix every function reproduces llama.cpp's llama-quantize output byte for
 * byte: the legacy and k-quant "reference" quantizers, the IQ4 search (ntry = 7) and the ternary
 * packers (docs/formats.md §5; checked by tests/test_quantize.c against the llama-tiny fixtures).
 * With an imatrix (per-column importance, n_per_row floats) the weighted "impl" variants of §5.4 run.
 *
 * Bit-compatibility rules followed throughout:
 *  - every float expression keeps ggml's evaluation order and types (f32, left to right), and
 *    a*b+c is never fused into an FMA (clang: the pragma below; gcc: -std=c11 already means
 *    -ffp-contract=off), so x86 and aarch64 produce identical bytes;
 *  - integer codes come from nearest_int() (round half to even, the 1.5*2^23 trick), from C's
 *    truncating float->int conversion, or from roundf (half away from zero), exactly where ggml
 *    uses each one;
 *  - stored scales are f16(RNE) and requantization uses the stored (f16-rounded) scale.
 *
 * Reentrant: all scratch lives on the stack, so several threads may quantize different row ranges
 * of one tensor at once (except I2_S, which needs the whole tensor in one call, see quantize.h).
 * Non-finite inputs never crash or trigger UB (codes are clamped; the bytes are then unspecified). */
#include "quantize.h"

#include "blocks.h"
#include "quant.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ggml's GROUP_MAX_EPS: a group whose largest |x| is below this is treated as all zero. */
#define GROUP_MAX_EPS 1e-15f

/* ---------------------------------------------------------------------------------------------
 * Small exact helpers
 * ------------------------------------------------------------------------------------------- */

/* Round to nearest, ties to even, for |v| <= 4194303 (ggml's nearest_int): adding 1.5*2^23 leaves the
 * rounded integer in the low mantissa bits. Out-of-range or NaN input yields some int, never UB. */
static inline int nearest_int(float v) {
    const float biased = v + 12582912.f;
    int32_t bits;
    memcpy(&bits, &biased, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* C's truncating float->int conversion, but defined for NaN/inf/huge values (which map to 0 or the
 * int range ends) so garbage input cannot trigger UB. Identical to (int)v for every finite v that fits. */
static inline int trunc_to_int(float v) {
    if (!(v == v)) return 0;
    if (v >= 2147483520.f) return 2147483647;
    if (v <= -2147483648.f) return (-2147483647 - 1);
    return (int)v;
}

/* roundf (ties away from zero) converted to int, with the same guard. */
static inline int round_away_to_int(float v) { return trunc_to_int(roundf(v)); }

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline float fmin_f(float a, float b) { return a < b ? a : b; }

static inline void store_f16(uint16_t *dst, float v) { *dst = quant_f32_to_f16(v); }
static inline float load_f16(uint16_t h) { return quant_f16_to_f32(h); }

/* Bytes for nrows rows of n_per_row elements of a type with this block geometry, or 0 when the row
 * length is not a positive multiple of the block size (the contract: return 0, write nothing). */
static size_t rows_bytes(int64_t nrows, int64_t n_per_row, int64_t blck, size_t block_bytes) {
    if (n_per_row <= 0 || nrows < 0 || n_per_row % blck != 0) return 0;
    return (size_t)nrows * (size_t)(n_per_row / blck) * block_bytes;
}

/* ---------------------------------------------------------------------------------------------
 * Scale-search helpers (docs/formats.md §5.2, §5.4). Shapes: n elements of x, codes into L.
 * ------------------------------------------------------------------------------------------- */

/* Symmetric weighted search (ggml make_qx_quants with rmse_type 1): codes l in [-nmax, nmax-1]
 * stored as L = l + nmax; weights qw, or x^2 when qw is NULL. Returns the float scale. */
static float make_qx_quants(int n, int nmax, const float *restrict x, int8_t *restrict L, const float *restrict qw) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        const float w = qw ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            const float w = qw ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
                L[i] = (int8_t)(l + nmax);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K reference search (ggml make_q3_quants, do_rmse): start from the max-anchored codes, then up
 * to 5 coordinate-descent passes with weights x^2. Codes stored as l + nmax. */
static float make_q3_quants(int n, int nmax, const float *restrict x, int8_t *restrict L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = imax(-nmax, imin(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric search (ggml make_qkx2_quants), reference k-quants: codes 0..nmax, value = scale*l - the_min.
 * Tries iscale = (rmin + rdelta*is + nmax)/(max - min) for is = 0..nstep, refitting (scale, min) by
 * weighted least squares; error is weighted |diff| (use_mad) or diff^2. Laux: n bytes of scratch. */
static float make_qkx2_quants(int n, int nmax, const float *restrict x, const float *restrict weights,
                              uint8_t *restrict L, float *restrict the_min, uint8_t *restrict Laux,
                              float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Asymmetric search for the imatrix variants (ggml make_qkx3_quants; weights always supplied here):
 * like make_qkx2_quants but the first-pass codes are clamped before rounding so that a fitted min
 * near max cannot push nearest_int out of range. MSE error (use_mad false in every caller). */
static float make_qkx3_quants(int n, int nmax, const float *restrict x, const float *restrict weights,
                              uint8_t *restrict L, float *restrict the_min, uint8_t *restrict Laux,
                              float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max <= min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        const float diff = scale * (float)L[i] + min - x[i];
        best_mse += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const float v = iscale * (x[i] - min);
            const int l = v > 0 ? nearest_int(fmin_f(v, (float)nmax)) : 0;
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mse = 0;
            for (int i = 0; i < n; ++i) {
                const float diff = this_scale * (float)Laux[i] + this_min - x[i];
                mse += weights[i] * (diff * diff);
            }
            if (mse < best_mse) {
                memcpy(L, Laux, (size_t)n);
                best_mse = mse;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Quantizes n non-negative sub-block scales (or mins) to 0..nmax with weights (ggml make_qp_quants):
 * try iscale = (nmax + 0.1*is)/max for is = -4..4, then up to 5 coordinate-descent passes.
 * Returns the super-block scale; L receives the codes (uint8 arithmetic as in ggml). */
static float make_qp_quants(int n, int nmax, const float *restrict x, uint8_t *restrict L, const float *restrict qw) {
    float max = 0;
    for (int i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
    if (max < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; ++i) L[i] = (uint8_t)nearest_int(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale * (float)L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; ++i) {
            const int l = imin(nmax, nearest_int(iscale_is * x[i]));
            const float diff = x[i] - scale_is * (float)l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = imin(nmax, nearest_int(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += qw[i] * x[i] * (float)L[i];
        suml2 += qw[i] * (float)L[i] * (float)L[i];
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = qw[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            if (slx > 0 && sl2 > 0) {
                const int new_l = imin(nmax, nearest_int(x[i] * sl2 / slx));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* sigma^2 of the legacy imatrix weights: mean of x^2 over the whole row (f32 running sum as ggml). */
static float row_mean_square(const float *x, int64_t n) {
    float sum_x2 = 0;
    for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / (float)n;
}

/* ---------------------------------------------------------------------------------------------
 * Plain float formats
 * ------------------------------------------------------------------------------------------- */

size_t quantize_f32(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix) {
    (void)imatrix;
    const size_t bytes = rows_bytes(nrows, n_per_row, 1, sizeof(float));
    if (bytes) memcpy(dst, src, bytes);
    return bytes;
}

size_t quantize_f16(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix) {
    (void)imatrix;
    const size_t bytes = rows_bytes(nrows, n_per_row, 1, sizeof(uint16_t));
    uint8_t *out = dst;
    for (size_t i = 0; i < bytes / 2; ++i) {
        const uint16_t h = quant_f32_to_f16(src[i]);
        memcpy(out + 2 * i, &h, 2);
    }
    return bytes;
}

size_t quantize_bf16(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix) {
    (void)imatrix;
    const size_t bytes = rows_bytes(nrows, n_per_row, 1, sizeof(uint16_t));
    uint8_t *out = dst;
    for (size_t i = 0; i < bytes / 2; ++i) {
        const uint16_t h = quant_f32_to_bf16(src[i]);
        memcpy(out + 2 * i, &h, 2);
    }
    return bytes;
}

/* ---------------------------------------------------------------------------------------------
 * Legacy 32-element blocks (§5.1; imatrix §5.4). Each block is built in a local struct and copied
 * out, so dst needs no particular alignment.
 * ------------------------------------------------------------------------------------------- */

/* The signed element of largest magnitude (first one found on ties) and its magnitude. */
static float signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax_out) *amax_out = amax;
    return max;
}

static void q4_0_block_ref(const float *x, block_q4_0 *b) {
    const float max = signed_absmax(x, QK4_0, NULL);
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(&b->d, d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
        const int c0 = imin(15, trunc_to_int(x[j] * id + 8.5f));
        const int c1 = imin(15, trunc_to_int(x[QK4_0 / 2 + j] * id + 8.5f));
        b->qs[j] = (uint8_t)((c0 & 15) | ((c1 & 15) << 4));
    }
}

static void q4_1_block_ref(const float *x, block_q4_1 *b) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK4_1; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(&b->d, d);
    store_f16(&b->m, min);
    for (int j = 0; j < QK4_1 / 2; ++j) {
        const int c0 = imin(15, trunc_to_int((x[j] - min) * id + 0.5f));
        const int c1 = imin(15, trunc_to_int((x[QK4_1 / 2 + j] - min) * id + 0.5f));
        b->qs[j] = (uint8_t)((c0 & 15) | ((c1 & 15) << 4));
    }
}

/* Packs 32 five-bit codes into Q5's low nibbles + 32-bit high-bit mask (bit e = 5th bit of element e). */
static void pack_q5(const uint8_t codes[32], uint8_t qs[16], uint8_t qh_bytes[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t c0 = codes[j], c1 = codes[j + 16];
        qs[j] = (uint8_t)((c0 & 0x0F) | ((c1 & 0x0F) << 4));
        qh |= (uint32_t)((c0 & 0x10u) >> 4) << j;
        qh |= (uint32_t)((c1 & 0x10u) >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; k++) qh_bytes[k] = (uint8_t)(qh >> (8 * k)); /* little-endian u32 */
}

static void q5_0_block_ref(const float *x, block_q5_0 *b) {
    const float max = signed_absmax(x, QK5_0, NULL);
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(&b->d, d);
    uint8_t codes[QK5_0];
    for (int j = 0; j < QK5_0; ++j) codes[j] = (uint8_t)imin(31, trunc_to_int(x[j] * id + 16.5f));
    pack_q5(codes, b->qs, b->qh);
}

static void q5_1_block_ref(const float *x, block_q5_1 *b) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK5_1; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(&b->d, d);
    store_f16(&b->m, min);
    uint8_t codes[QK5_1];
    /* ggml has no upper clamp here: (x - min)*id + 0.5 <= 31.5 up to rounding; the cast to uint8
     * truncates exactly as ggml's (uint8_t) cast does. */
    for (int j = 0; j < QK5_1; ++j) codes[j] = (uint8_t)trunc_to_int((x[j] - min) * id + 0.5f);
    pack_q5(codes, b->qs, b->qh);
}

static void q8_0_block_ref(const float *x, block_q8_0 *b) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(&b->d, d);
    for (int j = 0; j < QK8_0; ++j) b->qs[j] = (int8_t)imax(-128, imin(127, round_away_to_int(x[j] * id)));
}

/* imatrix weights of the legacy types: w_j = imatrix_j * sqrt(sigma2 + x_j^2). */
static void legacy_weights(const float *x, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < 32; ++j) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
}

/* Iterates the blocks of every row, calling make_block(x, qw, sigma2, out_block) with the block's
 * imatrix slice; the per-row sigma2 is computed only when an imatrix is present. */
#define LEGACY_QUANTIZE(NAME, BLOCK_T, QK, REF_FN, IMPL_FN)                                                   \
    size_t NAME(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row,              \
                const float *imatrix) {                                                                       \
        const size_t bytes = rows_bytes(nrows, n_per_row, QK, sizeof(BLOCK_T));                              \
        if (!bytes) return 0;                                                                                 \
        const int64_t nb = n_per_row / QK;                                                                    \
        uint8_t *out = dst;                                                                                   \
        for (int64_t r = 0; r < nrows; ++r) {                                                                 \
            const float *x = src + r * n_per_row;                                                             \
            const float sigma2 = imatrix ? row_mean_square(x, n_per_row) : 0.0f;                              \
            for (int64_t ib = 0; ib < nb; ++ib) {                                                             \
                BLOCK_T blk;                                                                                  \
                if (imatrix) IMPL_FN(x + ib * QK, imatrix + ib * QK, sigma2, &blk);                           \
                else REF_FN(x + ib * QK, &blk);                                                               \
                memcpy(out, &blk, sizeof blk);                                                                \
                out += sizeof blk;                                                                            \
            }                                                                                                 \
        }                                                                                                     \
        return bytes;                                                                                         \
    }

static void q4_0_block_imatrix(const float *x, const float *qw, float sigma2, block_q4_0 *b) {
    float w[QK4_0];
    int8_t L[QK4_0];
    legacy_weights(x, qw, sigma2, w);
    const float d = make_qx_quants(QK4_0, 8, x, L, w);
    store_f16(&b->d, d);
    for (int j = 0; j < 16; ++j) b->qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

static void q4_1_block_imatrix(const float *x, const float *qw, float sigma2, block_q4_1 *b) {
    float w[QK4_1];
    uint8_t L[QK4_1], Laux[QK4_1];
    legacy_weights(x, qw, sigma2, w);
    float min;
    const float d = make_qkx3_quants(QK4_1, 15, x, w, L, &min, Laux, -0.9f, 0.05f, 36);
    store_f16(&b->d, d);
    store_f16(&b->m, -min);
    for (int j = 0; j < 16; ++j) b->qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

static void q5_0_block_imatrix(const float *x, const float *qw, float sigma2, block_q5_0 *b) {
    float w[QK5_0];
    int8_t L[QK5_0];
    legacy_weights(x, qw, sigma2, w);
    const float d = make_qx_quants(QK5_0, 16, x, L, w);
    store_f16(&b->d, d);
    pack_q5((const uint8_t *)L, b->qs, b->qh);
}

static void q5_1_block_imatrix(const float *x, const float *qw, float sigma2, block_q5_1 *b) {
    float w[QK5_1];
    uint8_t L[QK5_1], Laux[QK5_1];
    legacy_weights(x, qw, sigma2, w);
    float min;
    const float d = make_qkx3_quants(QK5_1, 31, x, w, L, &min, Laux, -0.9f, 0.05f, 36);
    store_f16(&b->d, d);
    store_f16(&b->m, -min);
    pack_q5(L, b->qs, b->qh);
}

/* Q8_0 ignores the imatrix (as ggml does). */
static void q8_0_block_imatrix(const float *x, const float *qw, float sigma2, block_q8_0 *b) {
    (void)qw;
    (void)sigma2;
    q8_0_block_ref(x, b);
}

LEGACY_QUANTIZE(quantize_q4_0, block_q4_0, QK4_0, q4_0_block_ref, q4_0_block_imatrix)
LEGACY_QUANTIZE(quantize_q4_1, block_q4_1, QK4_1, q4_1_block_ref, q4_1_block_imatrix)
LEGACY_QUANTIZE(quantize_q5_0, block_q5_0, QK5_0, q5_0_block_ref, q5_0_block_imatrix)
LEGACY_QUANTIZE(quantize_q5_1, block_q5_1, QK5_1, q5_1_block_ref, q5_1_block_imatrix)
LEGACY_QUANTIZE(quantize_q8_0, block_q8_0, QK8_0, q8_0_block_ref, q8_0_block_imatrix)

/* ---------------------------------------------------------------------------------------------
 * k-quants (§5.3 reference, §5.4 imatrix). One 256-element super-block per call: x[0..255],
 * qw = the imatrix slice for these 256 columns (NULL = reference algorithm).
 * ------------------------------------------------------------------------------------------- */

/* 2-bit codes L[0..255] -> Q2_K/Q3_K qs layout: byte 32h + p holds elements 128h + p + 32k at bits 2k. */
static void pack_2bit_256(const uint8_t *L, uint8_t qs[64]) {
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

static void q2_K_block(const float *x, const float *qw, block_q2_K *y) {
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];

    if (!qw) {
        const float q4scale = 15.f;
        float max_scale = 0, max_min = 0; /* scales are non-negative since the min is subtracted */
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) y->scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            store_f16(&y->d, max_scale / q4scale);
        } else {
            for (int j = 0; j < QK_K / 16; ++j) y->scales[j] = 0;
            store_f16(&y->d, 0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j) {
                const unsigned l = (unsigned)nearest_int(iscale * mins[j]);
                y->scales[j] = (uint8_t)(y->scales[j] | (l << 4));
            }
            store_f16(&y->dmin, max_min / q4scale);
        } else {
            store_f16(&y->dmin, 0.f);
        }
    } else {
        float sw[QK_K / 16];
        uint8_t Ls[QK_K / 16], Lm[QK_K / 16];
        float sumx2 = 0;
        for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
        const float sigma2 = sumx2 / QK_K;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            sw[j] = 0;
            for (int l = 0; l < 16; ++l) sw[j] += weights[l];
            scales[j] = make_qkx3_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
        }
        const float dm = make_qp_quants(QK_K / 16, 15, scales, Ls, sw);
        const float mm = make_qp_quants(QK_K / 16, 15, mins, Lm, sw);
        store_f16(&y->d, dm);
        store_f16(&y->dmin, mm);
        for (int j = 0; j < QK_K / 16; ++j) y->scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
    }

    /* Requantize with the stored scales; sub-blocks with a zero scale keep their first-pass codes. */
    const float d_all = load_f16(y->d), dmin_all = load_f16(y->dmin);
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = d_all * (float)(y->scales[j] & 0xF);
        if (d == 0) continue;
        const float dm = dmin_all * (float)(y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            const int l = nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
        }
    }
    pack_2bit_256(L, y->qs);
}

/* Q3_K scale s (0..15), already offset by +32 (0..63) -> low nibble in scales[s%8], high 2 bits in scales[8 + s%4]. */
static void q3_K_put_scale(uint8_t scales[12], int j, int l) {
    if (j < 8) scales[j] = (uint8_t)(l & 0xF);
    else scales[j - 8] = (uint8_t)(scales[j - 8] | ((l & 0xF) << 4));
    l >>= 4;
    scales[j % 4 + 8] = (uint8_t)(scales[j % 4 + 8] | (l << (2 * (j / 4))));
}

static int q3_K_get_scale(const uint8_t scales[12], int j) {
    const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    return (low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

static void q3_K_block(const float *x, const float *qw, block_q3_K *y) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    memset(y->scales, 0, sizeof y->scales);

    if (!qw) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        if (max_scale != 0) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                /* ggml stores nearest_int() into an int8 before clamping; |iscale*scale| <= 32 so it fits. */
                const int l = imax(-32, imin(31, (int8_t)nearest_int(iscale * scales[j]))) + 32;
                q3_K_put_scale(y->scales, j, l);
            }
            store_f16(&y->d, 1 / iscale);
        } else {
            store_f16(&y->d, 0.f);
        }
    } else {
        float weight[16], sw[QK_K / 16];
        int8_t Ls[QK_K / 16];
        float sumx2 = 0;
        for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
        const float sigma2 = 2 * sumx2 / QK_K;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weight[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
            float sumw = 0;
            for (int l = 0; l < 16; ++l) sumw += weight[l];
            sw[j] = sumw;
            scales[j] = make_qx_quants(16, 4, x + 16 * j, L + 16 * j, weight);
        }
        const float d_block = make_qx_quants(QK_K / 16, 32, scales, Ls, sw);
        for (int j = 0; j < QK_K / 16; ++j) q3_K_put_scale(y->scales, j, Ls[j]);
        store_f16(&y->d, d_block);
    }

    const float d_all = load_f16(y->d);
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = d_all * (float)q3_K_get_scale(y->scales, j);
        if (d == 0) continue;
        for (int ii = 0; ii < 16; ++ii) {
            const int l = nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(imax(-4, imin(3, l)) + 4);
        }
    }

    /* High bit of element e goes to hmask[e % 32] bit e / 32; the low 2 bits pack like Q2_K. */
    memset(y->hmask, 0, sizeof y->hmask);
    uint8_t low[QK_K];
    for (int j = 0; j < QK_K; ++j) {
        int l = L[j];
        if (l > 3) {
            y->hmask[j % 32] = (uint8_t)(y->hmask[j % 32] | (1u << (j / 32)));
            l -= 4;
        }
        low[j] = (uint8_t)l;
    }
    pack_2bit_256(low, y->qs);
}

/* Q4_K/Q5_K 6-bit scale j (0..7) and min -> the 12-byte packing of docs/formats.md §3.10. */
static void k4_put_scale_min(uint8_t s[12], int j, uint8_t ls, uint8_t lm) {
    if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        s[j - 4] = (uint8_t)(s[j - 4] | ((ls >> 4) << 6));
        s[j] = (uint8_t)(s[j] | ((lm >> 4) << 6));
    }
}

static void k4_get_scale_min(const uint8_t s[12], int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* Shared first half of Q4_K and Q5_K: per 32-element sub-block scale/min search, scale quantization,
 * then requantization to 0..nmax with the stored scales. L receives the final codes; d/dmin/scales
 * are written to the block fields passed in. */
static void k45_scales_and_codes(const float *x, const float *qw, int nmax, float ref_rmin, int ref_nstep,
                                 uint16_t *d_out, uint16_t *dmin_out, uint8_t scales_out[12], uint8_t L[QK_K]) {
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];

    if (!qw) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 32; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            const float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, ref_rmin, 0.1f,
                                         ref_nstep, false);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < QK_K / 32; ++j) {
            /* ggml converts to uint8 first (wrapping), then clamps to 63. */
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
            k4_put_scale_min(scales_out, j, ls, lm);
        }
        store_f16(d_out, max_scale / 63.f);
        store_f16(dmin_out, max_min / 63.f);
    } else {
        float sw[QK_K / 32];
        uint8_t Ls[QK_K / 32], Lm[QK_K / 32];
        float sum_x2 = 0;
        for (int l = 0; l < QK_K; ++l) sum_x2 += x[l] * x[l];
        const float sigma2 = 2 * sum_x2 / QK_K;
        for (int j = 0; j < QK_K / 32; ++j) {
            for (int l = 0; l < 32; ++l) weights[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
            float sumw = 0;
            for (int l = 0; l < 32; ++l) sumw += weights[l];
            sw[j] = sumw;
            scales[j] = make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
        }
        const float d_block = make_qp_quants(QK_K / 32, 63, scales, Ls, sw);
        const float m_block = make_qp_quants(QK_K / 32, 63, mins, Lm, sw);
        for (int j = 0; j < QK_K / 32; ++j) {
            const uint8_t ls = Ls[j] < 63 ? Ls[j] : 63, lm = Lm[j] < 63 ? Lm[j] : 63;
            k4_put_scale_min(scales_out, j, ls, lm);
        }
        store_f16(d_out, d_block);
        store_f16(dmin_out, m_block);
    }

    const float d_all = load_f16(*d_out), dmin_all = load_f16(*dmin_out);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        k4_get_scale_min(scales_out, j, &sc, &m);
        const float d = d_all * (float)sc;
        if (d == 0) continue;
        const float dm = dmin_all * (float)m;
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

static void q4_K_block(const float *x, const float *qw, block_q4_K *y) {
    uint8_t L[QK_K];
    memset(y->scales, 0, sizeof y->scales);
    k45_scales_and_codes(x, qw, 15, -1.f, 20, &y->d, &y->dmin, y->scales, L);
    uint8_t *q = y->qs;
    for (int j = 0; j < QK_K; j += 64) {
        for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

static void q5_K_block(const float *x, const float *qw, block_q5_K *y) {
    uint8_t L[QK_K];
    memset(y->scales, 0, sizeof y->scales);
    k45_scales_and_codes(x, qw, 31, -0.5f, 15, &y->d, &y->dmin, y->scales, L);
    memset(y->qh, 0, sizeof y->qh);
    uint8_t *ql = y->qs;
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) { l1 -= 16; y->qh[j] |= m1; }
            if (l2 > 15) { l2 -= 16; y->qh[j] |= m2; }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 = (uint8_t)(m1 << 2);
        m2 = (uint8_t)(m2 << 2);
        ql += 32;
    }
}

static void q6_K_block(const float *x, const float *qw, block_q6_K *y) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
        /* Reference: weights x^2; imatrix: the importance values themselves (as ggml). */
        const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : NULL);
        scales[ib] = scale;
        if (fabsf(scale) > max_abs_scale) {
            max_abs_scale = fabsf(scale);
            max_scale = scale;
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, sizeof *y);
        store_f16(&y->d, 0.f);
        return;
    }
    const float iscale = -128.f / max_scale;
    store_f16(&y->d, 1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib) y->scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));

    const float d_all = load_f16(y->d);
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = d_all * (float)y->scales[j];
        if (d == 0) continue;
        for (int ii = 0; ii < 16; ++ii) {
            const int l = nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
        }
    }

    uint8_t *ql = y->ql, *qh = y->qh;
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t c1 = (uint8_t)L[j + l], c2 = (uint8_t)L[j + l + 32];
            const uint8_t c3 = (uint8_t)L[j + l + 64], c4 = (uint8_t)L[j + l + 96];
            ql[l] = (uint8_t)((c1 & 0xF) | ((c3 & 0xF) << 4));
            ql[l + 32] = (uint8_t)((c2 & 0xF) | ((c4 & 0xF) << 4));
            qh[l] = (uint8_t)((c1 >> 4) | ((c2 >> 4) << 2) | ((c3 >> 4) << 4) | ((c4 >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

/* Super-block loop shared by the 256-element types: BLOCK_FN(x, imatrix slice or NULL, &block). */
#define SUPERBLOCK_QUANTIZE(NAME, BLOCK_T, BLOCK_FN)                                                          \
    size_t NAME(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row,              \
                const float *imatrix) {                                                                       \
        const size_t bytes = rows_bytes(nrows, n_per_row, QK_K, sizeof(BLOCK_T));                             \
        if (!bytes) return 0;                                                                                 \
        const int64_t nb = n_per_row / QK_K;                                                                  \
        uint8_t *out = dst;                                                                                   \
        for (int64_t r = 0; r < nrows; ++r) {                                                                 \
            for (int64_t ib = 0; ib < nb; ++ib) {                                                             \
                BLOCK_T blk;                                                                                  \
                BLOCK_FN(src + r * n_per_row + ib * QK_K, imatrix ? imatrix + ib * QK_K : NULL, &blk);        \
                memcpy(out, &blk, sizeof blk);                                                                \
                out += sizeof blk;                                                                            \
            }                                                                                                 \
        }                                                                                                     \
        return bytes;                                                                                         \
    }

SUPERBLOCK_QUANTIZE(quantize_q2_K, block_q2_K, q2_K_block)
SUPERBLOCK_QUANTIZE(quantize_q3_K, block_q3_K, q3_K_block)
SUPERBLOCK_QUANTIZE(quantize_q4_K, block_q4_K, q4_K_block)
SUPERBLOCK_QUANTIZE(quantize_q5_K, block_q5_K, q5_K_block)
SUPERBLOCK_QUANTIZE(quantize_q6_K, block_q6_K, q6_K_block)

/* ---------------------------------------------------------------------------------------------
 * IQ4_NL / IQ4_XS (§5.5): non-linear 16-level code book, ntry = 7 scale search per 32 elements.
 * ------------------------------------------------------------------------------------------- */

/* Index of the code-book value nearest to v (table sorted ascending); an exact midpoint between two
 * levels picks the larger one. Comparing 2v with the sum of neighbours keeps both sides exact. */
static inline int iq4_best_index(float v) {
    const float v2 = v + v;
    int idx = 0;
    for (int step = 8; step > 0; step >>= 1) {
        const int j = idx + step;
        if (v2 >= (float)(kvalues_iq4nl[j - 1] + kvalues_iq4nl[j])) idx = j;
    }
    return idx;
}

enum { IQ4_NTRY = 7 };

/* Best scale for one 32-element sub-block (weights w) and its codes in L; 0 for an all-zero block. */
static float iq4_subblock_scale(const float *xb, const float *w, uint8_t *L) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
        const float ax = fabsf(xb[j]);
        if (ax > amax) { amax = ax; max = xb[j]; }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, 32);
        return 0;
    }
    float d = -max / kvalues_iq4nl[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
        const int l = iq4_best_index(id * xb[j]);
        L[j] = (uint8_t)l;
        const float q = kvalues_iq4nl[l];
        sumqx += w[j] * q * xb[j];
        sumq2 += w[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -IQ4_NTRY; itry <= IQ4_NTRY; ++itry) {
        id = (float)(itry + kvalues_iq4nl[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; ++j) {
            const float q = kvalues_iq4nl[iq4_best_index(id * xb[j])];
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* Weights of the IQ4 search: x^2, or imatrix * sqrt(sigma2 + x^2) with sigma2 = 2*mean(x^2) over
 * the super-block (32 elements for IQ4_NL, 256 for IQ4_XS). */
static void iq4_weights(const float *xb, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < 32; ++j) w[j] = qw ? qw[j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
}

static float iq4_sigma2(const float *x, int n) {
    float s = 0;
    for (int j = 0; j < n; ++j) s += x[j] * x[j];
    return s * (2.f / (float)n);
}

static void iq4_pack_nibbles(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < 16; ++j) qs[j] = (uint8_t)(L[j] | (L[16 + j] << 4));
}

static void iq4_nl_block(const float *x, const float *qw, block_iq4_nl *y) {
    float w[32];
    uint8_t L[32];
    iq4_weights(x, qw, qw ? iq4_sigma2(x, 32) : 0, w);
    const float d = iq4_subblock_scale(x, w, L);
    store_f16(&y->d, d);
    /* Final codes use the unrounded f32 scale (as ggml). */
    const float id = d != 0 ? 1 / d : 0;
    for (int j = 0; j < 32; ++j) L[j] = (uint8_t)iq4_best_index(id * x[j]);
    iq4_pack_nibbles(L, y->qs);
}

static void iq4_xs_block(const float *x, const float *qw, block_iq4_xs *y) {
    float w[32], scales[QK_K / 32];
    uint8_t L[QK_K];
    const float sigma2 = qw ? iq4_sigma2(x, QK_K) : 0;
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
        iq4_weights(x + 32 * ib, qw ? qw + 32 * ib : NULL, sigma2, w);
        scales[ib] = iq4_subblock_scale(x + 32 * ib, w, L + 32 * ib);
        if (fabsf(scales[ib]) > amax_scale) {
            amax_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    const float d = -max_scale / 32;
    store_f16(&y->d, d);
    const float id = d != 0 ? 1 / d : 0.f;
    uint16_t scales_h = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
        int l = imax(-32, imin(31, nearest_int(id * scales[ib])));
        /* Codes are remapped with the f32 sub-block scale d*l, not the f16-rounded one (as ggml). */
        const float dl = d * (float)l;
        const float idl = dl != 0 ? 1 / dl : 0.f;
        for (int j = 0; j < 32; ++j) L[32 * ib + j] = (uint8_t)iq4_best_index(idl * x[32 * ib + j]);
        l += 32;
        if (ib % 2 == 0) y->scales_l[ib / 2] = (uint8_t)(l & 0xF);
        else y->scales_l[ib / 2] = (uint8_t)(y->scales_l[ib / 2] | ((l & 0xF) << 4));
        scales_h = (uint16_t)(scales_h | ((l >> 4) << (2 * ib)));
    }
    y->scales_h = scales_h;
    for (int ib = 0; ib < QK_K / 32; ++ib) iq4_pack_nibbles(L + 32 * ib, y->qs + 16 * ib);
}

size_t quantize_iq4_nl(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix) {
    const size_t bytes = rows_bytes(nrows, n_per_row, QK4_NL, sizeof(block_iq4_nl));
    if (!bytes) return 0;
    const int64_t nb = n_per_row / QK4_NL;
    uint8_t *out = dst;
    for (int64_t r = 0; r < nrows; ++r) {
        for (int64_t ib = 0; ib < nb; ++ib) {
            block_iq4_nl blk;
            iq4_nl_block(src + r * n_per_row + ib * QK4_NL, imatrix ? imatrix + ib * QK4_NL : NULL, &blk);
            memcpy(out, &blk, sizeof blk);
            out += sizeof blk;
        }
    }
    return bytes;
}

SUPERBLOCK_QUANTIZE(quantize_iq4_xs, block_iq4_xs, iq4_xs_block)

/* ---------------------------------------------------------------------------------------------
 * Ternary block formats (§5.6): d = absmax of the 256 elements, trit = round(x/d) + 1 (ties away).
 * The imatrix is ignored (as ggml).
 * ------------------------------------------------------------------------------------------- */

static float block_absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    return amax;
}

/* Trit 0/1/2 of x*id (|x*id| <= 1 for finite input; clamped so garbage cannot escape the range). */
static inline int trit_of(float v) {
    const int t = round_away_to_int(v);
    return t < -1 ? 0 : t > 1 ? 2 : t + 1;
}

/* Five (or four, then *3) trits, most significant first, as base-3 fixed point in a byte:
 * ceil(v * 256 / 243) so that (byte * 3^n mod 256) * 3 >> 8 recovers trit n. */
static inline uint8_t tq1_pack_byte(int v) { return (uint8_t)((v * 256 + 242) / 243); }

static void tq1_0_block(const float *x, const float *qw, block_tq1_0 *y) {
    (void)qw;
    const float d = block_absmax(x, QK_K);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(&y->d, d);
    /* qs[0..31]: elements m + 32n (n = 0..4) of the first 160. */
    for (int m = 0; m < 32; ++m) {
        int v = 0;
        for (int n = 0; n < 5; ++n) v = v * 3 + trit_of(x[m + 32 * n] * id);
        y->qs[m] = tq1_pack_byte(v);
    }
    x += 160;
    /* qs[32..47]: elements 160 + m + 16n. */
    for (int m = 0; m < 16; ++m) {
        int v = 0;
        for (int n = 0; n < 5; ++n) v = v * 3 + trit_of(x[m + 16 * n] * id);
        y->qs[32 + m] = tq1_pack_byte(v);
    }
    x += 80;
    /* qh[0..3]: elements 240 + j + 4n (n = 0..3), shifted up one trit. */
    for (int j = 0; j < 4; ++j) {
        int v = 0;
        for (int n = 0; n < 4; ++n) v = v * 3 + trit_of(x[j + 4 * n] * id);
        y->qh[j] = tq1_pack_byte(v * 3);
    }
}

static void tq2_0_block(const float *x, const float *qw, block_tq2_0 *y) {
    (void)qw;
    const float d = block_absmax(x, QK_K);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(&y->d, d);
    for (int j = 0; j < QK_K / 4; j += 32) {
        for (int m = 0; m < 32; ++m) {
            unsigned q = 0;
            for (int n = 0; n < 4; ++n) q |= (unsigned)trit_of(x[m + 32 * n] * id) << (2 * n);
            y->qs[j + m] = (uint8_t)q;
        }
        x += 128;
    }
}

SUPERBLOCK_QUANTIZE(quantize_tq1_0, block_tq1_0, tq1_0_block)
SUPERBLOCK_QUANTIZE(quantize_tq2_0, block_tq2_0, tq2_0_block)

/* ---------------------------------------------------------------------------------------------
 * I2_S (§3.19, §5.7): the BitNet fork's C quantizer. Whole tensor in one call.
 * ------------------------------------------------------------------------------------------- */

size_t quantize_i2_s(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix) {
    (void)imatrix;
    const size_t code_bytes = rows_bytes(nrows, n_per_row, QK_I2S, sizeof(block_i2_s));
    if (!code_bytes) return 0;
    const int64_t n = nrows * n_per_row;
    /* Per-tensor scale = max|x|, accumulated in double as the fork does, stored as f32. */
    double max = 0;
    for (int64_t i = 0; i < n; ++i) max = fmax(max, fabs((double)src[i]));
    const double scale = max;
    uint8_t *out = dst;
    memset(out, 0, code_bytes);
    /* Code 1 (zero) below 1e-6 in magnitude, else 2 for positive, 0 for negative: the input is assumed
     * to be already ternary {-s, 0, +s} (see quant/ternary.c to get there from a trained matrix). */
    for (int64_t i = 0; i < n; ++i) {
        const double v = (double)src[i];
        const unsigned code = fabs(v) < 1e-6 ? 1u : (v * scale > 0 ? 2u : 0u);
        const int64_t g = i / QK_I2S, k = i % QK_I2S; /* element k = 32c + p of group g */
        const int64_t c = k / 32, p = k % 32;
        out[g * 32 + p] = (uint8_t)(out[g * 32 + p] | (code << (6 - 2 * c)));
    }
    const float scale_f32 = (float)scale;
    memcpy(out + code_bytes, &scale_f32, sizeof scale_f32);
    memset(out + code_bytes + sizeof scale_f32, 0, I2S_TENSOR_TAIL - sizeof scale_f32);
    return code_bytes + I2S_TENSOR_TAIL;
}
