/* What SIMD this CPU (and OS) can run, detected once at first use, plus the per-ISA dot-product
 * tables that kernels/dispatch.c chooses from.
 *
 * x86-64: cpuid leaves 1 and 7 for the instruction sets, xgetbv(XCR0) for whether the OS saves the
 * YMM / ZMM / opmask state (a CPU flag alone is not enough: a kernel without AVX-512 support leaves
 * the bits clear and the instructions fault).
 * aarch64: Advanced SIMD is architectural; dotprod (SDOT/UDOT, "asimddp") comes from
 * getauxval(AT_HWCAP). A family is usable only if this build compiled it *and* the CPU has it. */
#ifndef LLMPI_CPU_FEATURES_H
#define LLMPI_CPU_FEATURES_H

#include <stdbool.h>
#include <stdint.h>

#include "quant.h"
#include "kernels.h"

typedef struct {
    /* x86-64 */
    bool avx2, fma, f16c;                                 /* the "avx2" family needs all three */
    bool avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16; /* "avx512" needs f/bw/vl/vnni */
    bool avx_vnni;                                        /* reported only; no kernel uses it */
    /* aarch64 */
    bool neon;        /* Advanced SIMD (always on aarch64) */
    bool dotprod;     /* SDOT/UDOT (ARMv8.2 optional, ARMv8.4 mandatory; Cortex-A76 yes, A72 no) */
    bool fp16_arith;  /* half-precision vector arithmetic (reported only) */
} cpu_features;

/* Features of the running CPU (computed once, thread-safe). */
const cpu_features *cpu_features_get(void);

/* One line such as "avx2 fma f16c avx512f avx512bw avx512vl avx512vnni" (static buffer). */
const char *cpu_features_string(void);

/* ---- per-ISA kernel tables (defined in kernels/dot_*.c, consumed only by kernels/dispatch.c) ----
 * Each table maps a weight type id to a kernel with exactly quant_vec_dot_fn's contract (x = weight
 * row, y = activation row already converted to the type's vec_dot_type, n elements, *s = result).
 * Types a table does not list fall back to the next family (avx512 -> avx2 -> scalar reference,
 * neon-dotprod -> neon -> scalar reference); the table is the single place that says which. */
typedef struct {
    llmpi_type       type;
    quant_vec_dot_fn fn;
} kern_dot_entry;

/* 4-column kernels (kern_vec_dot4_fn, kernels.h), same table convention; a family lists only the
 * types it has a 4-column kernel for, and only types whose single kernel it also serves. */
typedef struct {
    llmpi_type       type;
    kern_vec_dot4_fn fn;
} kern_dot4_entry;

/* Arrays terminated by an entry with fn == NULL. Only declared for builds that compile them. */
#if defined(__x86_64__)
extern const kern_dot_entry kern_dots_avx2[];
extern const kern_dot_entry kern_dots_avx512[];
extern const kern_dot4_entry kern_dots4_avx2[];
extern const kern_dot4_entry kern_dots4_avx512[];
/* AVX2 activation quantizers (kernels/act_quant_avx2.c), byte-identical to quant/act_quant.c. */
void kern_quantize_row_q8_0_avx2(const float *restrict x, void *restrict y, int64_t n);
void kern_quantize_row_q8_1_avx2(const float *restrict x, void *restrict y, int64_t n);
void kern_quantize_row_q8_K_avx2(const float *restrict x, void *restrict y, int64_t n);
/* F16 weights x F32 activations (kern_vec_dot_for(F16, F32): bitnet.cpp numerics, docs/models.md). */
void kern_dot_f16_f32_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy);
#endif
#if defined(__aarch64__)
extern const kern_dot_entry kern_dots_neon[];
extern const kern_dot4_entry kern_dots4_neon[];
/* NEON activation quantizers (kernels/act_quant_neon.c), byte-identical to quant/act_quant.c. */
void kern_quantize_row_q8_0_neon(const float *restrict x, void *restrict y, int64_t n);
void kern_quantize_row_q8_1_neon(const float *restrict x, void *restrict y, int64_t n);
void kern_quantize_row_q8_K_neon(const float *restrict x, void *restrict y, int64_t n);
void kern_dot_f16_f32_neon(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy);
#if defined(__ARM_FEATURE_DOTPROD)
extern const kern_dot_entry kern_dots_neon_dotprod[];
extern const kern_dot4_entry kern_dots4_neon_dotprod[];
#endif
#endif

#endif
