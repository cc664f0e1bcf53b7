/* Unicode lookups, UTF-8 helpers and the BPE pre-tokenizers (the regex splits of llama.cpp's
 * unicode_regex_split, written as hand scanners).
 *
 * How llama.cpp splits: it applies each regex of the pre-tokenizer's list in turn; every regex refines the
 * current list of chunks: inside each chunk, every match becomes a word and so does every unmatched gap
 * between matches. The GPT-2 and Llama-3 regexes run through hand-written scanners in llama.cpp too
 * (reproduced here with the same quirks); the others run through std::regex on a text where every non-ASCII
 * codepoint is collapsed to its category (\s, \p{L}, \p{N}, \p{P} then mean: White_Space, letter, number,
 * punctuation, by general category). Every pattern used here always consumes at least one codepoint, so a
 * left-to-right "longest leftmost by alternative order" scan reproduces std::regex_iterator exactly. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- Unicode ------------------------------------------------------------------------------------ */

int tok_unicode_class(uint32_t cp) {
    if (cp > 0x10FFFF) return TOK_CLASS_UNDEFINED;
    /* last run whose start is <= cp (runs[0] starts at 0) */
    int lo = 0, hi = tok_unicode_n_runs - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if ((tok_unicode_runs[mid] >> 3) <= cp) lo = mid;
        else hi = mid - 1;
    }
    return (int)(tok_unicode_runs[lo] & 7u);
}

bool tok_unicode_is_whitespace(uint32_t cp) {
    for (int i = 0; i < tok_unicode_n_whitespace; i++) {
        if (cp < tok_unicode_whitespace[i][0]) return false;
        if (cp <= tok_unicode_whitespace[i][1]) return true;
    }
    return false;
}

uint8_t tok_cpt_flags(uint32_t cp) {
    /* ASCII is the common case: classify it once. */
    static const uint8_t ascii_class[128] = {
        7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        3, 5, 5, 5, 6, 5, 5, 5, 5, 5, 5, 6, 5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5, 6, 6, 6, 5,
        5, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 5, 5, 6, 5,
        6, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 6, 5, 6, 7,
    };
    uint8_t f = TOK_F_PRESENT;
    if (cp < 128) {
        f |= ascii_class[cp];
        if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20) f |= TOK_F_SPACE;
        return f;
    }
    f |= (uint8_t)tok_unicode_class(cp);
    if (tok_unicode_is_whitespace(cp)) f |= TOK_F_SPACE;
    return f;
}

/* ---- UTF-8 -------------------------------------------------------------------------------------- */

static bool is_cont(const char *s, size_t i) { return ((unsigned char)s[i] & 0xC0u) == 0x80u; }

size_t tok_utf8_to_cpts(const char *s, size_t len, uint32_t *cpts) {
    size_t n = 0, off = 0;
    while (off < len) {
        const unsigned char b0 = (unsigned char)s[off];
        uint32_t cp = 0xFFFD;
        size_t used = 1;
        if (b0 < 0x80) {
            cp = b0;
        } else if ((b0 & 0x40u) == 0) {
            /* stray continuation byte: invalid */
        } else if ((b0 & 0x20u) == 0) {
            if (off + 1 < len && is_cont(s, off + 1)) {
                cp = ((b0 & 0x1Fu) << 6) | ((unsigned char)s[off + 1] & 0x3Fu);
                used = 2;
            }
        } else if ((b0 & 0x10u) == 0) {
            if (off + 2 < len && is_cont(s, off + 1) && is_cont(s, off + 2)) {
                cp = ((b0 & 0x0Fu) << 12) | (((unsigned char)s[off + 1] & 0x3Fu) << 6) |
                     ((unsigned char)s[off + 2] & 0x3Fu);
                used = 3;
            }
        } else if ((b0 & 0x08u) == 0) {
            if (off + 3 < len && is_cont(s, off + 1) && is_cont(s, off + 2) && is_cont(s, off + 3)) {
                cp = ((b0 & 0x07u) << 18) | (((unsigned char)s[off + 1] & 0x3Fu) << 12) |
                     (((unsigned char)s[off + 2] & 0x3Fu) << 6) | ((unsigned char)s[off + 3] & 0x3Fu);
                used = 4;
                if (cp > 0x10FFFF) cp = 0xFFFD; /* llama.cpp throws here; we keep going */
            }
        }
        cpts[n++] = cp;
        off += used;
    }
    return n;
}

int tok_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0u | (cp >> 6));
        out[1] = (char)(0x80u | (cp & 0x3Fu));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0u | (cp >> 12));
        out[1] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
        out[2] = (char)(0x80u | (cp & 0x3Fu));
        return 3;
    }
    out[0] = (char)(0xF0u | ((cp >> 18) & 0x07u));
    out[1] = (char)(0x80u | ((cp >> 12) & 0x3Fu));
    out[2] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
    out[3] = (char)(0x80u | (cp & 0x3Fu));
    return 4;
}

/* ---- split machinery ---------------------------------------------------------------------------- */

#define OUT_OF_RANGE 0xFFFFFFFFu

typedef struct {
    const uint32_t *cpts;
    const uint8_t  *flags;
    size_t ini, end;       /* the chunk being split: [ini, end) */
    tok_lens *out;
    size_t prev_end;       /* end of the last emitted word */
    bool oom;
} splitter;

static uint32_t cpt_at(const splitter *s, size_t pos) {
    return pos >= s->ini && pos < s->end ? s->cpts[pos] : OUT_OF_RANGE;
}
static uint8_t flags_at(const splitter *s, size_t pos) {
    return pos >= s->ini && pos < s->end ? s->flags[pos] : 0;
}
static bool f_letter(uint8_t f) { return (f & TOK_F_CLASS_MASK) == TOK_CLASS_LETTER && (f & TOK_F_PRESENT); }
static bool f_number(uint8_t f) { return (f & TOK_F_CLASS_MASK) == TOK_CLASS_NUMBER && (f & TOK_F_PRESENT); }
static bool f_space(uint8_t f) { return (f & TOK_F_SPACE) != 0; }
/* [^\s\p{L}\p{N}] at a real position */
static bool f_other(uint8_t f) { return (f & TOK_F_PRESENT) && !f_space(f) && !f_letter(f) && !f_number(f); }

static void push_len(splitter *s, size_t len) {
    tok_lens *o = s->out;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        size_t *v = realloc(o->v, cap * sizeof *v);
        if (!v) { s->oom = true; return; }
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = len;
}

/* Emits the word [prev_end, end) if non-empty; returns its length. */
static size_t add_word(splitter *s, size_t end) {
    size_t len = end - s->prev_end;
    if (len > 0) push_len(s, len);
    s->prev_end = end;
    return len;
}

/* 's 't 're 've 'm 'll 'd at pos (case-insensitive if ci); returns the match length or 0. */
static size_t contraction_len(const splitter *s, size_t pos, bool ci) {
    if (cpt_at(s, pos) != '\'' || pos + 1 >= s->end) return 0;
    uint32_t a = cpt_at(s, pos + 1);
    if (ci && a >= 'A' && a <= 'Z') a += 32;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= s->end) return 0;
    uint32_t b = cpt_at(s, pos + 2);
    if (ci && b >= 'A' && b <= 'Z') b += 32;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(splitter *s) {
    size_t pos = s->ini;
    while (pos < s->end) {
        const uint32_t cpt = cpt_at(s, pos);
        const uint8_t flags = flags_at(s, pos);
        size_t c = contraction_len(s, pos, false);
        if (c) { pos += add_word(s, pos + c); continue; }

        const uint8_t next = cpt == ' ' ? flags_at(s, pos + 1) : flags;   /* class after the optional space */
        if (f_letter(next)) {
            pos += cpt == ' ';
            while (f_letter(flags_at(s, pos))) pos++;
            add_word(s, pos);
            continue;
        }
        if (f_number(next)) {
            pos += cpt == ' ';
            while (f_number(flags_at(s, pos))) pos++;
            add_word(s, pos);
            continue;
        }
        if (f_other(next)) {
            pos += cpt == ' ';
            while (f_other(flags_at(s, pos))) pos++;
            add_word(s, pos);
            continue;
        }
        size_t n_space = 0;
        while (f_space(flags_at(s, pos + n_space))) n_space++;
        if (n_space > 1 && cpt_at(s, pos + n_space) != OUT_OF_RANGE) {
            /* \s+(?!\S): leave the last space to prefix the next word */
            pos += n_space - 1;
            add_word(s, pos);
            continue;
        }
        if (n_space > 0) {
            pos += n_space;
            add_word(s, pos);
            continue;
        }
        add_word(s, ++pos);
    }
}

/* Llama 3 (max_digits 3): (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Qwen2 is the same with \p{N} (max_digits 1); llama.cpp runs that one through std::regex, which gives the
 * same words for this pattern. */
static void split_llama3(splitter *s, size_t max_digits) {
    size_t pos = s->ini;
    while (pos < s->end) {
        const uint32_t cpt = cpt_at(s, pos);
        const uint8_t flags = flags_at(s, pos);
        size_t c = contraction_len(s, pos, true);
        if (c) { pos += add_word(s, pos + c); continue; }

        if (!(cpt == '\r' || cpt == '\n' || f_number(flags))) {
            if (f_letter(flags) || f_letter(flags_at(s, pos + 1))) {
                pos++;                                   /* the optional prefix, or the first letter */
                while (f_letter(flags_at(s, pos))) pos++;
                add_word(s, pos);
                continue;
            }
        }
        if (f_number(flags)) {
            size_t start = pos;
            while (f_number(flags_at(s, pos))) {
                if (++pos - start >= max_digits) {
                    add_word(s, pos);
                    start = pos;
                }
            }
            add_word(s, pos);
            continue;
        }
        const uint8_t next = cpt == ' ' ? flags_at(s, pos + 1) : flags;
        /* llama.cpp tests the current position's presence here, not next's: " " at a chunk end matches */
        if (!(f_space(next) || f_letter(next) || f_number(next)) && (flags & TOK_F_PRESENT)) {
            pos += cpt == ' ';
            while (f_other(flags_at(s, pos))) pos++;
            for (uint32_t c2 = cpt_at(s, pos); c2 == '\r' || c2 == '\n'; c2 = cpt_at(s, ++pos)) {}
            add_word(s, pos);
            continue;
        }
        size_t n_space = 0, last_newline_end = 0;
        while (f_space(flags_at(s, pos + n_space))) {
            uint32_t c2 = cpt_at(s, pos + n_space);
            if (c2 == '\r' || c2 == '\n') last_newline_end = pos + n_space + 1;
            n_space++;
        }
        if (last_newline_end > 0) {                      /* \s*[\r\n]+ */
            pos = last_newline_end;
            add_word(s, pos);
            continue;
        }
        if (n_space > 1 && cpt_at(s, pos + n_space) != OUT_OF_RANGE) {
            pos += n_space - 1;
            add_word(s, pos);
            continue;
        }
        if (n_space > 0) {
            pos += n_space;
            add_word(s, pos);
            continue;
        }
        add_word(s, ++pos);
    }
}

/* Generic regex stage: match(s, pos) returns the length of the pattern's match starting at pos (0 if none;
 * the patterns never match empty). Matches and the gaps between them become words. */
typedef size_t (*match_fn)(const splitter *s, size_t pos);

static void split_matches(splitter *s, match_fn match) {
    size_t pos = s->ini;
    while (pos < s->end) {
        size_t len = match(s, pos);
        if (len == 0) { pos++; continue; }
        add_word(s, pos);           /* the gap before the match, if any */
        pos += len;
        add_word(s, pos);
    }
    add_word(s, s->end);
}

typedef struct { uint32_t lo, hi; } cp_range;

static bool in_ranges(uint32_t cp, const cp_range *r, size_t n) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

/* The codepoint std::wregex sees: llama.cpp replaces non-ASCII whitespace with U+000B. */
static uint32_t wregex_cpt(const splitter *s, size_t pos) {
    uint32_t cp = cpt_at(s, pos);
    if (cp != OUT_OF_RANGE && cp > 0x7F && f_space(flags_at(s, pos))) return 0x0B;
    return cp;
}

/* [\p{P}\$\+<=>\^~\|]+ */
static bool is_default_punct(const splitter *s, size_t pos) {
    uint8_t f = flags_at(s, pos);
    if (!(f & TOK_F_PRESENT)) return false;
    uint32_t cp = cpt_at(s, pos);
    if ((f & TOK_F_CLASS_MASK) == TOK_CLASS_PUNCT && !f_space(f)) return true;
    return cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' || cp == '~' || cp == '|';
}
static size_t match_default_punct(const splitter *s, size_t pos) {
    size_t p = pos;
    while (p < s->end && is_default_punct(s, p)) p++;
    return p - pos;
}
/* \p{N}+ */
static size_t match_numbers(const splitter *s, size_t pos) {
    size_t p = pos;
    while (f_number(flags_at(s, p)) && !f_space(flags_at(s, p))) p++;
    return p - pos;
}
/* \p{N} */
static size_t match_one_number(const splitter *s, size_t pos) {
    uint8_t f = flags_at(s, pos);
    return f_number(f) && !f_space(f) ? 1 : 0;
}
/* [0-9][0-9][0-9] */
static size_t match_three_digits(const splitter *s, size_t pos) {
    for (size_t i = 0; i < 3; i++) {
        uint32_t cp = cpt_at(s, pos + i);
        if (cp < '0' || cp > '9') return 0;
    }
    return 3;
}
/* [\r\n] */
static size_t match_newline(const splitter *s, size_t pos) {
    uint32_t cp = cpt_at(s, pos);
    return cp == '\r' || cp == '\n' ? 1 : 0;
}

/* DeepSeek LLM's letter class (cased letters of an older Unicode, from its tokenizer.json regex). */
static const cp_range deepseek_letters[] = {
    { 0x41, 0x5A }, { 0x61, 0x7A }, { 0xB5, 0xB5 }, { 0xC0, 0xD6 }, { 0xD8, 0xF6 }, { 0xF8, 0x1BA },
    { 0x1BC, 0x1BF }, { 0x1C4, 0x293 }, { 0x295, 0x2AF }, { 0x370, 0x373 }, { 0x376, 0x377 },
    { 0x37B, 0x37D }, { 0x37F, 0x37F }, { 0x386, 0x386 }, { 0x388, 0x38A }, { 0x38C, 0x38C },
    { 0x38E, 0x3A1 }, { 0x3A3, 0x3F5 }, { 0x3F7, 0x481 }, { 0x48A, 0x52F }, { 0x531, 0x556 },
    { 0x10A0, 0x10C5 }, { 0x13A0, 0x13F5 }, { 0x13F8, 0x13FD }, { 0x1C90, 0x1CBA }, { 0x1CBD, 0x1CBF },
    { 0x1D00, 0x1D2B }, { 0x1D6B, 0x1D77 }, { 0x1D79, 0x1D9A }, { 0x1E00, 0x1F15 }, { 0x1F18, 0x1F1D },
    { 0x1F20, 0x1F45 }, { 0x1F48, 0x1F4D }, { 0x1F50, 0x1F57 }, { 0x1F59, 0x1F59 }, { 0x1F5B, 0x1F5B },
    { 0x1F5D, 0x1F5D }, { 0x1F5F, 0x1F7D }, { 0x1F80, 0x1FB4 }, { 0x1FB6, 0x1FBC }, { 0x1FBE, 0x1FBE },
    { 0x1FC2, 0x1FC4 }, { 0x1FC6, 0x1FCC }, { 0x1FD0, 0x1FD3 }, { 0x1FD6, 0x1FDB }, { 0x1FE0, 0x1FEC },
    { 0x1FF2, 0x1FF4 }, { 0x1FF6, 0x1FFC }, { 0x2102, 0x2102 }, { 0x2107, 0x2107 }, { 0x210A, 0x2113 },
    { 0x2115, 0x2115 }, { 0x2119, 0x211D }, { 0x2124, 0x2124 }, { 0x2126, 0x2126 }, { 0x2128, 0x2128 },
    { 0x212A, 0x212D }, { 0x212F, 0x2134 }, { 0x2139, 0x2139 }, { 0x213C, 0x213F }, { 0x2145, 0x2149 },
    { 0x214E, 0x214E }, { 0x2183, 0x2184 }, { 0x2C00, 0x2C7B }, { 0x2C7E, 0x2CE4 }, { 0x2CEB, 0x2CEE },
    { 0x2CF2, 0x2CF3 }, { 0xA640, 0xA66D }, { 0xA680, 0xA69B }, { 0xA722, 0xA76F }, { 0xA771, 0xA787 },
    { 0xA78B, 0xA78E }, { 0xAB70, 0xABBF }, { 0xFB00, 0xFB06 }, { 0xFB13, 0xFB17 }, { 0xFF21, 0xFF3A },
    { 0xFF41, 0xFF5A }, { 0x10400, 0x1044F }, { 0x104B0, 0x104D3 }, { 0x104D8, 0x104FB },
    { 0x10C80, 0x10CB2 }, { 0x10CC0, 0x10CF2 }, { 0x118A0, 0x118DF }, { 0x1E900, 0x1E943 },
};
/* [!-/:-~！-／：-～‘-‟　-。] (sorted) */
static const cp_range deepseek_punct[] = {
    { 0x21, 0x2F }, { 0x3A, 0x7E }, { 0x2018, 0x201F }, { 0x3000, 0x3002 }, { 0xFF01, 0xFF0F }, { 0xFF1A, 0xFF5E },
};
/* [一-龥ࠀ-一가-퟿] (sorted, overlapping ends merged) */
static const cp_range deepseek_cjk[] = { { 0x0800, 0x9FA5 }, { 0xAC00, 0xD7FF } };

#define N_RANGES(r) (sizeof(r) / sizeof((r)[0]))

/* \s?[class]+ in std::wregex */
static size_t match_space_then_run(const splitter *s, size_t pos, const cp_range *r, size_t nr) {
    size_t p = pos;
    if (f_space(flags_at(s, p)) && in_ranges(wregex_cpt(s, p + 1), r, nr)) p++;
    size_t start = p;
    while (p < s->end && in_ranges(wregex_cpt(s, p), r, nr)) p++;
    return p > start ? p - pos : 0;
}
static size_t match_ds_letters(const splitter *s, size_t pos) {
    return match_space_then_run(s, pos, deepseek_letters, N_RANGES(deepseek_letters));
}
static size_t match_ds_punct(const splitter *s, size_t pos) {
    return match_space_then_run(s, pos, deepseek_punct, N_RANGES(deepseek_punct));
}
static size_t match_ds_cjk(const splitter *s, size_t pos) {
    size_t p = pos;
    while (p < s->end && in_ranges(wregex_cpt(s, p), deepseek_cjk, N_RANGES(deepseek_cjk))) p++;
    return p - pos;
}

/* \s+$ : the chunk's trailing whitespace run (the only place the pattern can match). */
static void split_trailing_space(splitter *s) {
    size_t t = s->end;
    while (t > s->ini && f_space(s->flags[t - 1])) t--;
    add_word(s, t);
    add_word(s, s->end);
}

typedef enum {
    STAGE_GPT2, STAGE_LLAMA3, STAGE_QWEN2, STAGE_DEFAULT_PUNCT, STAGE_NUMBERS, STAGE_ONE_NUMBER,
    STAGE_THREE_DIGITS, STAGE_NEWLINE, STAGE_DS_LETTERS, STAGE_DS_PUNCT, STAGE_TRAILING_SPACE, STAGE_DS_CJK
} stage_kind;

static void run_stage(splitter *s, stage_kind k) {
    switch (k) {
    case STAGE_GPT2:           split_gpt2(s); break;
    case STAGE_LLAMA3:         split_llama3(s, 3); break;
    case STAGE_QWEN2:          split_llama3(s, 1); break;
    case STAGE_DEFAULT_PUNCT:  split_matches(s, match_default_punct); break;
    case STAGE_NUMBERS:        split_matches(s, match_numbers); break;
    case STAGE_ONE_NUMBER:     split_matches(s, match_one_number); break;
    case STAGE_THREE_DIGITS:   split_matches(s, match_three_digits); break;
    case STAGE_NEWLINE:        split_matches(s, match_newline); break;
    case STAGE_DS_LETTERS:     split_matches(s, match_ds_letters); break;
    case STAGE_DS_PUNCT:       split_matches(s, match_ds_punct); break;
    case STAGE_TRAILING_SPACE: split_trailing_space(s); break;
    case STAGE_DS_CJK:         split_matches(s, match_ds_cjk); break;
    }
}

int tok_pretokenize(tok_pre_kind kind, const uint32_t *cpts, const uint8_t *flags, size_t n, tok_lens *out) {
    static const stage_kind st_default[] = { STAGE_DEFAULT_PUNCT, STAGE_GPT2, STAGE_NUMBERS, STAGE_THREE_DIGITS };
    static const stage_kind st_gpt2[] = { STAGE_GPT2 };
    static const stage_kind st_llama3[] = { STAGE_LLAMA3 };
    static const stage_kind st_qwen2[] = { STAGE_QWEN2 };
    static const stage_kind st_smollm[] = { STAGE_ONE_NUMBER, STAGE_GPT2 };
    static const stage_kind st_deepseek[] = { STAGE_NEWLINE, STAGE_DS_LETTERS, STAGE_DS_PUNCT,
                                              STAGE_TRAILING_SPACE, STAGE_DS_CJK, STAGE_NUMBERS };
    const stage_kind *stages;
    size_t n_stages;
    switch (kind) {
    case TOK_PRE_DEFAULT:      stages = st_default;  n_stages = N_RANGES(st_default); break;
    case TOK_PRE_GPT2:         stages = st_gpt2;     n_stages = 1; break;
    case TOK_PRE_LLAMA3:       stages = st_llama3;   n_stages = 1; break;
    case TOK_PRE_QWEN2:        stages = st_qwen2;    n_stages = 1; break;
    case TOK_PRE_SMOLLM:       stages = st_smollm;   n_stages = N_RANGES(st_smollm); break;
    case TOK_PRE_DEEPSEEK_LLM: stages = st_deepseek; n_stages = N_RANGES(st_deepseek); break;
    default: return -1;
    }

    out->n = 0;
    if (n == 0) return 0;
    /* Two lists: the chunks of the previous stage (in) and the words of this one (out); swap per stage. */
    tok_lens in = { 0 };
    in.v = malloc(sizeof *in.v);
    if (!in.v) return -1;
    in.v[0] = n;
    in.n = in.cap = 1;
    for (size_t k = 0; k < n_stages; k++) {
        out->n = 0;
        splitter s = { .cpts = cpts, .flags = flags, .out = out };
        size_t start = 0;
        for (size_t c = 0; c < in.n; c++) {
            s.ini = s.prev_end = start;
            s.end = start + in.v[c];
            run_stage(&s, stages[k]);
            if (s.oom) { free(in.v); return -1; }
            start = s.end;
        }
        if (k + 1 < n_stages) {
            tok_lens tmp = in;
            in = *out;
            *out = tmp;
        }
    }
    free(in.v);
    return 0;
}
