/* Run-time CPU feature detection (see cpu_features.h). */
#include "cpu_features.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

static cpu_features detected;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
/* XCR0 via xgetbv; only valid when cpuid says OSXSAVE (the instruction faults otherwise). Inline asm
 * instead of _xgetbv() so this file needs no -mxsave. */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    const bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    const uint64_t xcr0 = read_xcr0();
    const bool os_ymm = (xcr0 & 0x6) == 0x6;    /* XMM (bit 1) and YMM (bit 2) state */
    const bool os_zmm = (xcr0 & 0xE0) == 0xE0;  /* opmask (5), ZMM_Hi256 (6), Hi16_ZMM (7) */
    if (!os_ymm) return;
    f->fma = fma;
    f->f16c = f16c;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned leaf7_subleaves = a;
    f->avx2 = (b >> 5) & 1;
    if (os_zmm) {
        f->avx512f = (b >> 16) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        f->avx512vnni = (c >> 11) & 1;
    }
    if (leaf7_subleaves >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        f->avx_vnni = (a >> 4) & 1;
        f->avx512bf16 = os_zmm && ((a >> 5) & 1);
    }
}
#endif

/* Filled once by detect(), so concurrent callers only read it. */
static char features_line[160];

static void describe(const cpu_features *f) {
    static const struct { size_t offset; const char *name; } flags[] = {
        { offsetof(cpu_features, avx2), "avx2" },          { offsetof(cpu_features, fma), "fma" },
        { offsetof(cpu_features, f16c), "f16c" },          { offsetof(cpu_features, avx512f), "avx512f" },
        { offsetof(cpu_features, avx512bw), "avx512bw" },  { offsetof(cpu_features, avx512vl), "avx512vl" },
        { offsetof(cpu_features, avx512vnni), "avx512vnni" },
        { offsetof(cpu_features, avx512bf16), "avx512bf16" },
        { offsetof(cpu_features, avx_vnni), "avxvnni" },   { offsetof(cpu_features, neon), "neon" },
        { offsetof(cpu_features, dotprod), "dotprod" },    { offsetof(cpu_features, fp16_arith), "fp16" },
    };
    size_t len = 0;
    features_line[0] = 0;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        bool on;
        memcpy(&on, (const char *)f + flags[i].offset, sizeof on);
        if (!on) continue;
        int w = snprintf(features_line + len, sizeof features_line - len, "%s%s", len ? " " : "", flags[i].name);
        if (w < 0 || (size_t)w >= sizeof features_line - len) break;
        len += (size_t)w;
    }
}

static void detect(void) {
    cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(__x86_64__)
    detect_x86(&f);
#elif defined(__aarch64__)
    f.neon = true;
#if defined(__linux__)
    const unsigned long hwcap = getauxval(AT_HWCAP);
    f.dotprod = (hwcap >> 20) & 1;    /* HWCAP_ASIMDDP */
    f.fp16_arith = (hwcap >> 10) & 1; /* HWCAP_ASIMDHP */
#elif defined(__ARM_FEATURE_DOTPROD)
    f.dotprod = true; /* no auxv: trust the compile target */
#endif
#endif
    detected = f;
    describe(&detected);
}

const cpu_features *cpu_features_get(void) {
    pthread_once(&detect_once, detect);
    return &detected;
}

const char *cpu_features_string(void) {
    cpu_features_get();
    return features_line;
}
