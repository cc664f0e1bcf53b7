/* Internals shared by engine/tokenizer*.c: Unicode classes, UTF-8 helpers, GPT-2 byte mapping and the
 * BPE pre-tokenizers. Not part of the library's interface. */
#ifndef LLMPI_TOKENIZER_INTERNAL_H
#define LLMPI_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Unicode (tokenizer_unicode.c is generated; see docs/tokenizer.md) ---------------------------- */

/* General-category groups, as llama.cpp groups them (Cn undefined; Cc/Cf/Co/Cs control). */
enum {
    TOK_CLASS_UNDEFINED = 0, TOK_CLASS_NUMBER = 1, TOK_CLASS_LETTER = 2, TOK_CLASS_SEPARATOR = 3,
    TOK_CLASS_MARK = 4, TOK_CLASS_PUNCT = 5, TOK_CLASS_SYMBOL = 6, TOK_CLASS_CONTROL = 7
};
extern const uint32_t tok_unicode_runs[];        /* (first_codepoint << 3) | class, ascending */
extern const int      tok_unicode_n_runs;
extern const uint32_t tok_unicode_whitespace[][2];
extern const int      tok_unicode_n_whitespace;

int  tok_unicode_class(uint32_t cp);              /* TOK_CLASS_*; UNDEFINED above U+10FFFF */
bool tok_unicode_is_whitespace(uint32_t cp);      /* White_Space property */

/* Per-codepoint flags used by the pre-tokenizers: class in bits 0-2, then these bits. A position outside
 * the chunk being split has flags 0 (like llama.cpp's empty unicode_cpt_flags). */
#define TOK_F_CLASS_MASK 0x07u
#define TOK_F_SPACE      0x08u   /* White_Space */
#define TOK_F_PRESENT    0x10u   /* a real codepoint (always set inside the chunk) */
uint8_t tok_cpt_flags(uint32_t cp);

/* ---- UTF-8 ---------------------------------------------------------------------------------------- */

/* Sequence length from the lead byte's high nibble, exactly llama.cpp's unicode_len_utf8 (continuation and
 * invalid bytes count as 1). */
static inline size_t tok_utf8_len(unsigned char lead) {
    static const unsigned char len_by_nibble[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return len_by_nibble[lead >> 4];
}
/* Decodes text into codepoints like llama.cpp's unicode_cpts_from_utf8: a byte that does not start a
 * well-formed (continuation-checked) sequence becomes U+FFFD and consumes one byte. Codepoints above
 * U+10FFFF (which llama.cpp cannot re-encode) also become U+FFFD. Returns the count; cpts needs len slots. */
size_t tok_utf8_to_cpts(const char *text, size_t len, uint32_t *cpts);
/* Encodes cp (<= 0x10FFFF) into out, returns 1..4. */
int tok_utf8_encode(uint32_t cp, char out[4]);

/* ---- GPT-2 byte-level mapping --------------------------------------------------------------------- */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) map to themselves;
 * the other 68 bytes, in increasing order, map to U+0100.. U+0143. */
static inline uint32_t tok_byte_to_cp(unsigned char b) {
    if (b <= 0x20) return 0x100u + b;                          /* 33 bytes -> U+0100..U+0120 */
    if (b >= 0x7F && b <= 0xA0) return 0x121u + (b - 0x7Fu);   /* 34 bytes -> U+0121..U+0142 */
    if (b == 0xAD) return 0x143u;
    return b;
}
/* Inverse of tok_byte_to_cp, or -1 if cp is not one of the 256 mapped codepoints. */
static inline int tok_cp_to_byte(uint32_t cp) {
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(cp - 0x121 + 0x7F);
    if (cp == 0x143) return 0xAD;
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    return -1;
}

/* ---- BPE pre-tokenizers --------------------------------------------------------------------------- */

typedef enum {
    TOK_PRE_DEFAULT,       /* llama.cpp's default list: [\p{P}$+<=>^~|]+, GPT-2 regex, \p{N}+, [0-9]{3} */
    TOK_PRE_GPT2,          /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
    TOK_PRE_LLAMA3,        /* (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|... */
    TOK_PRE_QWEN2,         /* as LLAMA3 with \p{N} (one digit per word) */
    TOK_PRE_SMOLLM,        /* \p{N}, then the GPT-2 regex */
    TOK_PRE_DEEPSEEK_LLM   /* [\r\n], \s?[cased letters]+, \s?[punctuation]+, \s+$, [CJK]+, \p{N}+ */
} tok_pre_kind;

/* Growable list of word lengths (in codepoints). */
typedef struct { size_t *v; size_t n, cap; } tok_lens;

/* Splits cpts[0..n) into words the way llama.cpp's unicode_regex_split does for `kind` (each regex of the
 * list refines the previous split; unmatched gaps become words of their own). flags[i] must be
 * tok_cpt_flags(cpts[i]). Replaces out's contents. Returns 0, or -1 when out of memory. */
int tok_pretokenize(tok_pre_kind kind, const uint32_t *cpts, const uint8_t *flags, size_t n, tok_lens *out);

#endif
