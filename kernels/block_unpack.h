/* Portable (ISA-independent) block-field helpers shared by the SIMD kernel files
 * (dot_avx2.c, dot_avx512.c, dot_neon.c): one definition instead of a copy per architecture.
 * All reads go through memcpy: block fields are not guaranteed to be aligned. */
#ifndef LLMPI_BLOCK_UNPACK_H
#define LLMPI_BLOCK_UNPACK_H

#include <stdint.h>
#include <string.h>

/* Little-endian f32 at p (I8_S row scale, Q8_K d). */
static inline float load_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

/* BF16 at p widened exactly to f32 (the bits become the high half). */
static inline float bf16_to_f32(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Q4_K / Q5_K 12-byte scale field -> out[0..7] = sc0..7, out[8..15] = m0..7 (6-bit each).
 * Bytes 0-3: sc0..3 (low 6 bits) + top 2 bits of sc4..7; bytes 4-7: m0..3 + top 2 bits of m4..7;
 * bytes 8-11: low nibbles of sc4..7 (lo) and m4..7 (hi). Four bytes at a time in u32 lanes. */
static inline void unpack_k4_scales(const uint8_t *packed, uint8_t out[16]) {
    uint32_t w[3], o[4];
    memcpy(w, packed, 12);
    const uint32_t low6 = 0x3F3F3F3Fu, low4 = 0x0F0F0F0Fu, low2 = 0x03030303u;
    o[0] = w[0] & low6;                                              /* sc0..3 */
    o[1] = (w[2] & low4) | (((w[0] >> 6) & low2) << 4);             /* sc4..7 */
    o[2] = w[1] & low6;                                              /* m0..3 */
    o[3] = ((w[2] >> 4) & low4) | (((w[1] >> 6) & low2) << 4);      /* m4..7 */
    memcpy(out, o, 16);
}

/* Q3_K 12-byte scale field -> 16 unsigned 6-bit values (subtract 32 for the signed scale).
 * Scale s: low 4 bits = lo(S[s]) (s < 8) or hi(S[s-8]); high 2 bits = bits 2*(s/4).. of S[8 + s%4]. */
static inline void unpack_q3k_scales(const uint8_t *packed, uint8_t out[16]) {
    uint32_t w[3], o[4];
    memcpy(w, packed, 12);
    const uint32_t low4 = 0x0F0F0F0Fu, low2 = 0x03030303u;
    o[0] = (w[0] & low4) | ((w[2] & low2) << 4);
    o[1] = (w[1] & low4) | (((w[2] >> 2) & low2) << 4);
    o[2] = ((w[0] >> 4) & low4) | (((w[2] >> 4) & low2) << 4);
    o[3] = ((w[1] >> 4) & low4) | (((w[2] >> 6) & low2) << 4);
    memcpy(out, o, 16);
}

#endif
