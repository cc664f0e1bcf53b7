/* to_float for every supported type, bit-identical to ggml's dequantizers (docs/formats.md §3).
 *
 * Bit-exactness depends on doing the float operations in ggml's order and without fused
 * multiply-adds: e.g. Q4_K computes d1 = d * sc (f32), m1 = dmin * m (f32), then d1 * q - m1.
 * GCC in ISO C mode (-std=c11) never contracts a*b+c into an FMA; clang would on targets with FMA
 * (aarch64), hence the pragma. Integer-to-float conversions of codes are exact.
 *
 * Block pointers: rows handed in must be aligned for their block struct (2 bytes, 4 for Q8_K),
 * which GGUF's 32-byte tensor alignment and malloc guarantee. */
#include "quant.h"
#include "blocks.h"
#include "ref.h"

#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define F16(h) quant_f16_to_f32(h)

void dequantize_row_f32(const void *restrict x, float *restrict y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void dequantize_row_f16(const void *restrict x, float *restrict y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = quant_f16_to_f32(h[i]);
}

void dequantize_row_bf16(const void *restrict x, float *restrict y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = quant_bf16_to_f32(h[i]);
}

/* Q4_0: element e < 16 in the low nibble of qs[e], e >= 16 in the high nibble of qs[e-16]. */
void dequantize_row_q4_0(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q4_0 *x = vx;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        const float d = F16(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j]             = (float)((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_row_q4_1(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q4_1 *x = vx;
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        const float d = F16(x[i].d), m = F16(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j]             = (float)(x[i].qs[j] & 0x0F) * d + m;
            y[j + QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

/* Q5: the 5th bit of element e is bit e of the little-endian u32 qh. */
static uint32_t load_u32_le(const uint8_t b[4]) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void dequantize_row_q5_0(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q5_0 *x = vx;
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        const float d = F16(x[i].d);
        const uint32_t qh = load_u32_le(x[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int hi0 = (int)((qh >> j) & 1u) << 4;
            const int hi1 = (int)((qh >> (j + 16)) & 1u) << 4;
            y[j]             = (float)(((x[i].qs[j] & 0x0F) | hi0) - 16) * d;
            y[j + QK5_0 / 2] = (float)(((x[i].qs[j] >> 4) | hi1) - 16) * d;
        }
    }
}

void dequantize_row_q5_1(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q5_1 *x = vx;
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        const float d = F16(x[i].d), m = F16(x[i].m);
        const uint32_t qh = load_u32_le(x[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int hi0 = (int)((qh >> j) & 1u) << 4;
            const int hi1 = (int)((qh >> (j + 16)) & 1u) << 4;
            y[j]             = (float)((x[i].qs[j] & 0x0F) | hi0) * d + m;
            y[j + QK5_1 / 2] = (float)((x[i].qs[j] >> 4) | hi1) * d + m;
        }
    }
}

void dequantize_row_q8_0(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const float d = F16(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

void dequantize_row_q8_1(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        const float d = F16(x[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

/* Q2_K: each half (128 elements) uses 32 qs bytes; shift 2k picks the k-th group of 32 elements,
 * and every 16 elements have their own 4-bit scale (low nibble) and min (high nibble). */
void dequantize_row_q2_K(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q2_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = F16(x[i].d), dmin = F16(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int sub = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++, sub++) {
                    const uint8_t sc = x[i].scales[sub];
                    const float dl = d * (float)(sc & 0x0F);
                    const float ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Q3_K's 16 6-bit scales: low 4 bits in bytes 0..7 (lo nibble for s < 8, hi nibble for s >= 8),
 * high 2 bits in bytes 8..11 at bit 2*(s/4). Returned as the signed value (-32..31). */
static void q3k_unpack_scales(const uint8_t packed[12], int8_t out[16]) {
    for (int s = 0; s < 16; s++) {
        const int low4 = s < 8 ? (packed[s] & 0x0F) : (packed[s - 8] >> 4);
        const int high2 = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
        out[s] = (int8_t)((low4 | high2 << 4) - 32);
    }
}

void dequantize_row_q3_K(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q3_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = F16(x[i].d);
        int8_t scales[16];
        q3k_unpack_scales(x[i].scales, scales);
        const uint8_t *q = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        uint8_t hbit = 1;       /* hmask bit of the current group of 32 (element e: bit e/32) */
        int sub = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, hbit = (uint8_t)(hbit << 1)) {
                for (int part = 0; part < 2; part++, sub++) {
                    const float dl = d_all * (float)scales[sub];
                    for (int l = 16 * part; l < 16 * part + 16; l++) {
                        const int code = ((q[l] >> shift) & 3) - ((hm[l] & hbit) ? 0 : 4);
                        *y++ = dl * (float)code;
                    }
                }
            }
        }
    }
}

void q4k_get_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m  = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4));
        *m  = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* Q4_K: 4 groups of 64; each qs byte holds element t of sub-block 2g (low nibble) and of 2g+1 (high). */
void dequantize_row_q4_K(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q4_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = F16(x[i].d), dmin = F16(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int g = 0; g < 4; g++, q += 32) {
            uint8_t sc, m;
            q4k_get_scale_min(2 * g, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            q4k_get_scale_min(2 * g + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void dequantize_row_q5_K(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q5_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = F16(x[i].d), dmin = F16(x[i].dmin);
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        for (int g = 0; g < 4; g++, ql += 32) {
            /* high bit of element e is bit e/32 of qh[e % 32]: sub-blocks 2g and 2g+1 */
            const uint8_t u1 = (uint8_t)(1u << (2 * g)), u2 = (uint8_t)(2u << (2 * g));
            uint8_t sc, m;
            q4k_get_scale_min(2 * g, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            q4k_get_scale_min(2 * g + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

/* Q6_K: per half of 128, element 32k + p takes its low nibble from ql (k=0/1 low nibbles of
 * ql[p], ql[32+p]; k=2/3 high nibbles) and its top 2 bits from qh[p] >> 2k. ggml evaluates
 * d * scale first, then times q. */
void dequantize_row_q6_K(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q6_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = F16(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l]      & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l]      >> 4)   | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4)   | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l]      = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void dequantize_row_q8_K(const void *restrict vx, float *restrict y, int64_t n) {
    const block_q8_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = x[i].d * (float)x[i].qs[j];
}

void dequantize_row_iq4_nl(const void *restrict vx, float *restrict y, int64_t n) {
    const block_iq4_nl *x = vx;
    for (int64_t i = 0; i < n / QK4_NL; i++, y += QK4_NL) {
        const float d = F16(x[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j]              = d * (float)kvalues_iq4nl[x[i].qs[j] & 0x0F];
            y[j + QK4_NL / 2] = d * (float)kvalues_iq4nl[x[i].qs[j] >> 4];
        }
    }
}

void dequantize_row_iq4_xs(const void *restrict vx, float *restrict y, int64_t n) {
    const block_iq4_xs *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = F16(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (int ib = 0; ib < QK_K / 32; ib++, qs += 16, y += 32) {
            const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((x[i].scales_h >> (2 * ib)) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j]      = dl * (float)kvalues_iq4nl[qs[j] & 0x0F];
                y[j + 16] = dl * (float)kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}

/* TQ1_0 trit n (0 = most significant) of a base-3 fixed-point byte b: the 8-bit product b * 3^n
 * drops the n leading trits, then (q * 3) >> 8 reads off the next one (0..2). */
static int tq1_trit(uint8_t b, int n) {
    static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
    const uint8_t q = (uint8_t)(b * pow3[n]);
    return (q * 3) >> 8;
}

void dequantize_row_tq1_0(const void *restrict vx, float *restrict y, int64_t n) {
    const block_tq1_0 *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = F16(x[i].d);
        /* qs[0..31]: 5 trits each -> elements 32n + m (0..159) */
        for (int t = 0; t < 5; t++)
            for (int m = 0; m < 32; m++) *y++ = (float)(tq1_trit(x[i].qs[m], t) - 1) * d;
        /* qs[32..47]: 5 trits each -> elements 160 + 16n + m */
        for (int t = 0; t < 5; t++)
            for (int m = 0; m < 16; m++) *y++ = (float)(tq1_trit(x[i].qs[32 + m], t) - 1) * d;
        /* qh[0..3]: 4 trits each -> elements 240 + 4n + j */
        for (int t = 0; t < 4; t++)
            for (int j = 0; j < 4; j++) *y++ = (float)(tq1_trit(x[i].qh[j], t) - 1) * d;
    }
}

/* TQ1_0 -> TQ2_0 without loss (the engine converts TQ1_0 weights at load, engine/model.c): each block keeps
 * its d and its trits; TQ2_0 byte 32h + l holds element 128h + 32k + l in bits 2k..2k+1, code = trit. */
void quant_tq1_0_to_tq2_0(const void *restrict vx, void *restrict vy, int64_t n) {
    const block_tq1_0 *x = vx;
    block_tq2_0 *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t codes[QK_K];   /* element order of dequantize_row_tq1_0 */
        int e = 0;
        for (int t = 0; t < 5; t++) for (int m = 0; m < 32; m++) codes[e++] = (uint8_t)tq1_trit(x[i].qs[m], t);
        for (int t = 0; t < 5; t++) for (int m = 0; m < 16; m++) codes[e++] = (uint8_t)tq1_trit(x[i].qs[32 + m], t);
        for (int t = 0; t < 4; t++) for (int j = 0; j < 4; j++) codes[e++] = (uint8_t)tq1_trit(x[i].qh[j], t);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *c = codes + 128 * h + l;
                y[i].qs[32 * h + l] = (uint8_t)(c[0] | c[32] << 2 | c[64] << 4 | c[96] << 6);
            }
        y[i].d = x[i].d;
    }
}

void dequantize_row_tq2_0(const void *restrict vx, float *restrict y, int64_t n) {
    const block_tq2_0 *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = F16(x[i].d);
        for (int half = 0; half < 2; half++)
            for (int k = 0; k < 4; k++)
                for (int p = 0; p < 32; p++)
                    *y++ = (float)(((x[i].qs[32 * half + p] >> (2 * k)) & 3) - 1) * d;
    }
}

/* I2_S: byte 32g + p holds elements 128g + 32c + p for c = 0..3 in bits (7-2c, 6-2c). */
void dequantize_row_i2_s(const void *restrict vx, float *restrict y, int64_t n) {
    const block_i2_s *x = vx;
    for (int64_t g = 0; g < n / QK_I2S; g++, y += QK_I2S)
        for (int c = 0; c < 4; c++)
            for (int p = 0; p < 32; p++)
                y[32 * c + p] = (float)(((x[g].qs[p] >> (6 - 2 * c)) & 3) - 1);
}

void dequantize_row_i8_s(const void *restrict vx, float *restrict y, int64_t n) {
    const int8_t *a = vx;
    float s;
    memcpy(&s, (const uint8_t *)vx + I8S_SCALE_OFFSET(n), sizeof s);
    for (int64_t k = 0; k < n; k++) y[k] = (float)a[k] / s;
}

float quant_i2s_tensor_scale(const void *tensor_data, int64_t n) {
    float scale;
    memcpy(&scale, (const uint8_t *)tensor_data + n / 4, sizeof scale);
    return scale;
}

bool quant_dequantize_tensor(uint32_t t, const void *data, float *y, int64_t n_per_row, int64_t nrows) {
    const quant_type_traits *tr = quant_traits(t);
    if (!tr || !tr->to_float || !data || !y || n_per_row <= 0 || nrows < 0) return false;
    if (n_per_row % tr->blck_size) return false;
    const size_t row_bytes = quant_row_size(t, n_per_row);
    if (row_bytes == 0) return false;
    if (nrows > 0 && (uint64_t)n_per_row > (uint64_t)INT64_MAX / (uint64_t)nrows) return false;
    const uint8_t *src = data;
    for (int64_t r = 0; r < nrows; r++)
        tr->to_float(src + (size_t)r * row_bytes, y + (size_t)r * (size_t)n_per_row, n_per_row);
    if (t == LLMPI_TYPE_I2_S) {
        /* Row to_float gave the ternary values; apply the one scale stored after all codes. */
        const int64_t n = n_per_row * nrows;
        const float scale = quant_i2s_tensor_scale(data, n);
        for (int64_t i = 0; i < n; i++) y[i] *= scale;
    }
    return true;
}
