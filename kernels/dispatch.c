/* Run-time choice of the vec_dot kernel for each weight type.
 *
 * Kernel families, best first on each architecture:
 *   x86-64:  avx512 (F+BW+VL+VNNI)  ->  avx2 (+FMA+F16C)  ->  scalar
 *   aarch64: neon-dotprod (SDOT)    ->  neon (ARMv8.0)    ->  scalar
 * "scalar" is the reference from the type table (quant_traits(t)->vec_dot, quant/vec_dot.c).
 * A family only lists the types it implements (tables at the end of each kernels/dot_*.c); for any
 * other type the next family down the chain is used, ending at the scalar reference, and
 * kern_vec_dot_impl() names the family that actually serves the type.
 *
 * Which types each family implements (see the kern_dots_* tables for the authoritative list):
 *   avx2:         F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_XS TQ1_0 TQ2_0 I2_S
 *   avx512:       Q4_0 Q8_0 Q4_K TQ2_0 TQ1_0 I2_S F16 F32 (the rest: avx2); TQ1_0 and I2_S are in ternary_avx512.c
 *   neon:         same list as avx2 (vmull_s8 / vpadalq_s16 integer path)
 *   neon-dotprod: the integer types (SDOT); F32/F16/BF16 use the neon kernels
 *
 * 4-column kernels (kern_vec_dot_4, the kern_dots4_* tables) are looked up only in the family that
 * serves the type's single kernel, never down the chain, so both give bit-identical results.
 * kern_act_quant hands out the SIMD activation quantizers (Q8_0, Q8_1, Q8_K; avx2/avx512 and neon families).
 *
 * The family can be forced with kern_set_impl() or, at first use, $LLMPI_KERNELS
 * (scalar | avx2 | avx512 | neon | neon-dotprod | auto). */
#include "kernels.h"
#include "cpu_features.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef enum { FAM_SCALAR, FAM_AVX2, FAM_AVX512, FAM_NEON, FAM_NEON_DOTPROD, FAM_COUNT } kern_family;

static const char *const family_names[FAM_COUNT] = {
    [FAM_SCALAR] = "scalar", [FAM_AVX2] = "avx2", [FAM_AVX512] = "avx512",
    [FAM_NEON] = "neon", [FAM_NEON_DOTPROD] = "neon-dotprod",
};
/* Where a family falls back to for a type it does not implement. */
static const kern_family family_fallback[FAM_COUNT] = {
    [FAM_SCALAR] = FAM_SCALAR, [FAM_AVX2] = FAM_SCALAR, [FAM_AVX512] = FAM_AVX2,
    [FAM_NEON] = FAM_SCALAR, [FAM_NEON_DOTPROD] = FAM_NEON,
};

static quant_vec_dot_fn family_kernels[FAM_COUNT][LLMPI_TYPE_COUNT];
/* 4-column kernels; only consulted for the family that serves the type's single kernel. */
static kern_vec_dot4_fn family_kernels4[FAM_COUNT][LLMPI_TYPE_COUNT];
static bool family_usable[FAM_COUNT];
static kern_family best_family;
static _Atomic int active_family;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void load_table(kern_family fam, const kern_dot_entry *table) {
    for (const kern_dot_entry *e = table; e->fn; e++)
        if ((unsigned)e->type < LLMPI_TYPE_COUNT) family_kernels[fam][e->type] = e->fn;
}

static void load_table4(kern_family fam, const kern_dot4_entry *table) {
    for (const kern_dot4_entry *e = table; e->fn; e++)
        if ((unsigned)e->type < LLMPI_TYPE_COUNT) family_kernels4[fam][e->type] = e->fn;
}

static int family_from_name(const char *name) {
    for (int f = 0; f < FAM_COUNT; f++)
        if (strcmp(name, family_names[f]) == 0) return f;
    return -1;
}

static void init_dispatch(void) {
    const cpu_features *cpu = cpu_features_get();
    family_usable[FAM_SCALAR] = true;
    best_family = FAM_SCALAR;
#if defined(__x86_64__)
    if (cpu->avx2 && cpu->fma && cpu->f16c) {
        load_table(FAM_AVX2, kern_dots_avx2);
        load_table4(FAM_AVX2, kern_dots4_avx2);
        family_usable[FAM_AVX2] = true;
        best_family = FAM_AVX2;
        if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni) {
            load_table(FAM_AVX512, kern_dots_avx512);
            load_table4(FAM_AVX512, kern_dots4_avx512);
            family_usable[FAM_AVX512] = true;
            best_family = FAM_AVX512;
        }
    }
#elif defined(__aarch64__)
    load_table(FAM_NEON, kern_dots_neon);
    load_table4(FAM_NEON, kern_dots4_neon);
    family_usable[FAM_NEON] = true;
    best_family = FAM_NEON;
#if defined(__ARM_FEATURE_DOTPROD)
    if (cpu->dotprod) {
        load_table(FAM_NEON_DOTPROD, kern_dots_neon_dotprod);
        load_table4(FAM_NEON_DOTPROD, kern_dots4_neon_dotprod);
        family_usable[FAM_NEON_DOTPROD] = true;
        best_family = FAM_NEON_DOTPROD;
    }
#endif
#endif
    (void)cpu;
    kern_family chosen = best_family;
    const char *env = getenv("LLMPI_KERNELS");
    if (env && *env) {
        int f = family_from_name(env);
        /* An unknown or unavailable name is ignored (the library does not print); tools that care
         * can call kern_set_impl() themselves and report its error. */
        if (f >= 0 && family_usable[f]) chosen = (kern_family)f;
    }
    atomic_store(&active_family, (int)chosen);
}

int kern_set_impl(const char *name) {
    pthread_once(&init_once, init_dispatch);
    if (!name || !*name || strcmp(name, "auto") == 0) {
        atomic_store(&active_family, (int)best_family);
        return 0;
    }
    int f = family_from_name(name);
    if (f < 0 || !family_usable[f]) return -1;
    atomic_store(&active_family, f);
    return 0;
}

const char *kern_get_impl(void) {
    pthread_once(&init_once, init_dispatch);
    return family_names[atomic_load(&active_family)];
}

/* The family that serves type t under the active setting (FAM_SCALAR when nothing better exists). */
static kern_family serving_family(uint32_t t) {
    kern_family f = (kern_family)atomic_load(&active_family);
    while (f != FAM_SCALAR && !family_kernels[f][t]) f = family_fallback[f];
    return f;
}

quant_vec_dot_fn kern_vec_dot(uint32_t t) {
    pthread_once(&init_once, init_dispatch);
    const quant_type_traits *tr = quant_traits(t);
    if (!tr) return NULL;
    kern_family f = serving_family(t);
    return f == FAM_SCALAR ? tr->vec_dot : family_kernels[f][t];
}

/* Weight x activation pairs other than the type table's (the ternary cross pairs of the two
 * activation schemes) are served by the scalar reference for now: no family table has them yet. */
quant_vec_dot_fn kern_vec_dot_for(uint32_t w, uint32_t a) {
    const quant_type_traits *tr = quant_traits(w);
    if (!tr) return NULL;
    if (a == 0 || a == (uint32_t)tr->vec_dot_type) return kern_vec_dot(w);
    if (w == LLMPI_TYPE_F16 && a == LLMPI_TYPE_F32) {   /* bitnet.cpp numerics' F16 output matrix */
        pthread_once(&init_once, init_dispatch);
        const int f = atomic_load(&active_family);
#if defined(__x86_64__)
        if (f == FAM_AVX2 || f == FAM_AVX512) return kern_dot_f16_f32_avx2;
#elif defined(__aarch64__)
        if (f == FAM_NEON || f == FAM_NEON_DOTPROD) return kern_dot_f16_f32_neon;
#endif
        (void)f;   /* scalar family: the reference below */
    }
    return quant_vec_dot_for(w, a);
}

kern_vec_dot4_fn kern_vec_dot_4(uint32_t t) {
    pthread_once(&init_once, init_dispatch);
    if (!quant_traits(t)) return NULL;
    /* Must come from the same family as kern_vec_dot(t) (bit-identical results), so no fallback. */
    return family_kernels4[serving_family(t)][t];
}

quant_from_float_fn kern_act_quant(uint32_t t) {
    pthread_once(&init_once, init_dispatch);
    const quant_type_traits *tr = quant_traits(t);
    if (!tr) return NULL;
#if defined(__x86_64__)
    const int f = atomic_load(&active_family);
    if (f == FAM_AVX2 || f == FAM_AVX512) {   /* usable only if the CPU has AVX2+FMA+F16C */
        if (t == LLMPI_TYPE_Q8_0) return kern_quantize_row_q8_0_avx2;
        if (t == LLMPI_TYPE_Q8_1) return kern_quantize_row_q8_1_avx2;
        if (t == LLMPI_TYPE_Q8_K) return kern_quantize_row_q8_K_avx2;
    }
#elif defined(__aarch64__)
    const int f = atomic_load(&active_family);
    if (f == FAM_NEON || f == FAM_NEON_DOTPROD) {
        if (t == LLMPI_TYPE_Q8_0) return kern_quantize_row_q8_0_neon;
        if (t == LLMPI_TYPE_Q8_1) return kern_quantize_row_q8_1_neon;
        if (t == LLMPI_TYPE_Q8_K) return kern_quantize_row_q8_K_neon;
    }
#endif
    return tr->from_float;
}

const char *kern_vec_dot_impl(uint32_t t) {
    pthread_once(&init_once, init_dispatch);
    if (!quant_traits(t)) return "none";
    return family_names[serving_family(t)];
}
