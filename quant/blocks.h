/* Block layouts, bit-compatible with ggml (docs/formats.md §3; docs/formats.md in this repo
 * explains each in our own words). One packed struct per format, its bits per weight, and a size
 * assertion. f16 fields are raw IEEE binary16 bits (uint16_t); convert with quant_f16_to_f32. */
#ifndef LLMPI_BLOCKS_H
#define LLMPI_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#define QK4_0  32
#define QK4_1  32
#define QK5_0  32
#define QK5_1  32
#define QK8_0  32
#define QK8_1  32
#define QK_K   256   /* k-quant / TQ / IQ4_XS super-block */
#define QK4_NL 32
#define QK_I2S 128   /* I2_S group: 128 elements in 32 bytes */
#define K_SCALE_SIZE 12

/* Q4_0: 4.5 bpw. value = (code - 8) * d; code e<16 in the low nibble of qs[e], e>=16 in the high nibble of qs[e-16]. */
typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

/* Q4_1: 5.0 bpw. value = code * d + m. */
typedef struct { uint16_t d; uint16_t m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");

/* Q5_0: 5.5 bpw. 5th bit of element e is bit e of qh (LE u32). value = (code - 16) * d. */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");

/* Q5_1: 6.0 bpw. value = code * d + m. */
typedef struct { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");

/* Q8_0: 8.5 bpw. value = qs[e] * d. Also the activation format for Q4_0/Q5_0/Q8_0/IQ4_NL. */
typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");

/* Q8_1: 9.0 bpw, activation only (for Q4_1/Q5_1). s = f16(d * sum(qs)). */
typedef struct { uint16_t d; uint16_t s; int8_t qs[QK8_1]; } block_q8_1;
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

/* Q2_K: 2.625 bpw. 16 sub-blocks of 16; scales[s] = scale (low nibble) | min (high nibble).
 * value = d * (scales[s] & 15) * code - dmin * (scales[s] >> 4). */
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d; uint16_t dmin; } block_q2_K;
static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");

/* Q3_K: 3.4375 bpw. 2 low bits in qs, high bit in hmask, 16 signed 6-bit scales packed in 12 bytes. */
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; } block_q3_K;
static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");

/* Q4_K: 4.5 bpw. 8 sub-blocks of 32 with 6-bit scale and min packed in 12 bytes. */
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");

/* Q5_K: 5.5 bpw. Q4_K plus one high bit per element in qh. */
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");

/* Q6_K: 6.5625 bpw. 4 low bits in ql, 2 high bits in qh, 16 signed 8-bit scales. value = d * scales[s] * (q - 32). */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;
static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");

/* Q8_K: 9.125 bpw, activation only (for k-quants, IQ4_XS, TQ*). d is f32; bsums[g] = sum of qs[16g..16g+15]. */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

/* IQ4_NL: 4.5 bpw. value = d * kvalues_iq4nl[code]; nibble addressing as Q4_0. */
typedef struct { uint16_t d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;
static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl size");

/* IQ4_XS: 4.25 bpw. 8 sub-blocks of 32, 6-bit scales (low 4 in scales_l, high 2 in scales_h). */
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; } block_iq4_xs;
static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs size");

/* TQ1_0: 1.6875 bpw. Trits packed 5 per byte (qs) and 4 per byte (qh), base-3 fixed point. value = (t - 1) * d. */
typedef struct { uint8_t qs[(QK_K - 4 * QK_K / 64) / 5]; uint8_t qh[QK_K / 64]; uint16_t d; } block_tq1_0;
static_assert(sizeof(block_tq1_0) == 54, "block_tq1_0 size");

/* TQ2_0: 2.0625 bpw. 2-bit codes, value = (code - 1) * d. */
typedef struct { uint8_t qs[QK_K / 4]; uint16_t d; } block_tq2_0;
static_assert(sizeof(block_tq2_0) == 66, "block_tq2_0 size");

/* I2_S (BitNet fork): 2 bpw + one f32 scale per tensor. A 128-element group is 32 bytes: byte p holds
 * elements p, p+32, p+64, p+96 in bits 7-6, 5-4, 3-2, 1-0; code 0/1/2 = -1/0/+1. The tensor's f32 scale
 * follows all groups at byte n/4, then 28 bytes of filler (tensor = n/4 + 32 bytes). */
typedef struct { uint8_t qs[QK_I2S / 4]; } block_i2_s;
static_assert(sizeof(block_i2_s) == 32, "block_i2_s size");
#define I2S_TENSOR_TAIL 32

/* IQ4_NL / IQ4_XS non-linear code book. */
static const int8_t kvalues_iq4nl[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };

#endif
