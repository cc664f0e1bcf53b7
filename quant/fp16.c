/* IEEE binary16 and bfloat16 <-> binary32 conversions (docs/formats.md §3.0), portable bit
 * manipulation, no tables and no F16C. Results are bit-identical to ggml's conversions:
 *   f16 -> f32, bf16 -> f32: exact widening (subnormals, signed zeros, Inf, NaN kept).
 *   f32 -> f16: round to nearest, ties to even; subnormal results produced; |x| >= 65520 -> Inf;
 *               NaN -> 0x7E00 with the input's sign (payload dropped, quiet NaN).
 *   f32 -> bf16: NaN -> top 16 bits with the quiet bit 0x40 forced; otherwise round to nearest even
 *               on the 16 dropped bits (overflow naturally rounds to Inf). */
#include "quant.h"

#include <string.h>

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

float quant_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp  = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (mant << 13));   /* Inf / NaN */
    if (exp != 0) return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13)); /* 112 = 127 - 15 */
    if (mant == 0) return bits_f32(sign);                                  /* +-0 */
    /* Subnormal: value = mant * 2^-24. Shift the leading 1 up to bit 10 to make it normal. */
    uint32_t e = 113;                        /* biased f32 exponent of 2^-14 */
    while (!(mant & 0x400u)) { mant <<= 1; e--; }
    return bits_f32(sign | (e << 23) | ((mant & 0x3FFu) << 13));
}

uint16_t quant_f32_to_f16(float f) {
    const uint32_t x = f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);        /* NaN */
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);       /* >= 65520 (halfway past 65504) or Inf */
    if (ax >= 0x38800000u) {
        /* Normal f16 (>= 2^-14): rebias the exponent by 112 and round the 13 dropped mantissa bits
         * to nearest even; a mantissa carry correctly bumps the exponent. */
        const uint32_t rebased = ax - 0x38000000u;
        return (uint16_t)(sign | ((rebased + 0xFFFu + ((rebased >> 13) & 1u)) >> 13));
    }
    if (ax <= 0x33000000u) return sign;   /* <= 2^-25: rounds to zero (2^-25 itself is a tie -> even 0) */
    /* Subnormal f16: result = round(value / 2^-24). value = m * 2^(e-150) with the implicit bit in m,
     * so value / 2^-24 = m >> (126 - e); 126 - e is in 14..24 here. */
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e;
    const uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    const uint32_t r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
    return (uint16_t)(sign | r);          /* r == 0x400 becomes the smallest normal, as it should */
}

float quant_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t quant_f32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);  /* NaN: force quiet */
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
