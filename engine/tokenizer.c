/* Tokenizer loading, encoding (SPM and byte-level BPE), detokenization and the streaming detokenizer.
 * Behaviour follows llama.cpp's llama_vocab (see docs/tokenizer.md for the rules and the few deliberate
 * differences, all in cases where llama.cpp would abort or throw). */
#include "tokenizer.h"
#include "tokenizer_internal.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Token attributes (llama.cpp's llama_token_attr bits), plus our end-of-generation mark. */
enum {
    ATTR_UNKNOWN = 1 << 0, ATTR_UNUSED = 1 << 1, ATTR_NORMAL = 1 << 2, ATTR_CONTROL = 1 << 3,
    ATTR_USER_DEFINED = 1 << 4, ATTR_BYTE = 1 << 5, ATTR_LSTRIP = 1 << 7, ATTR_RSTRIP = 1 << 8,
    ATTR_EOG = 1 << 12
};

typedef enum { VOCAB_SPM, VOCAB_BPE } vocab_kind;

/* One merge "left right": both parts live in merge_text at off (left) and off + left_len + 1 (right). */
typedef struct {
    uint32_t off, left_len, right_len;
} merge_entry;

struct llmpi_tokenizer {
    vocab_kind   kind;
    tok_pre_kind pre;
    char         pre_name[32];
    int32_t      n_vocab;

    /* vocabulary: text of token i is text_pool[text_off[i] .. text_off[i+1]) */
    char     *text_pool;
    uint32_t *text_off;        /* n_vocab + 1 */
    float    *score;
    uint16_t *attr;
    /* rendered pieces (as with render_special): piece_pool[piece_off[i] .. piece_off[i+1]) */
    char     *piece_pool;
    uint32_t *piece_off;       /* n_vocab + 1 */
    int       max_piece_len;

    /* open-addressing hash: token text -> id (-1 = empty slot) */
    int32_t  *tok_slots;
    uint32_t  tok_mask;

    /* BPE merges: (left, right) -> rank; hash slots hold merge indices (-1 = empty) */
    char        *merge_text;
    merge_entry *merges;
    int32_t      n_merges;
    int32_t     *merge_slots;
    uint32_t     merge_mask;

    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, clean_spaces, ignore_merges;

    int32_t byte_token[256];       /* SPM: <0xNN> token (or the 1-byte token); BPE: the 1-byte-text token */

    int32_t *special;              /* CONTROL / USER_DEFINED / UNKNOWN ids, longest text first */
    int32_t  n_special;
};

/* ---- small helpers ------------------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Printable, truncated copy of a metadata string for error messages. */
static void quote_str(char *dst, size_t cap, const char *s, uint64_t len) {
    size_t j = 0;
    uint64_t i = 0;
    for (; i < len && j + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F) dst[j++] = (char)c;
        else j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", c);
    }
    if (i < len) { memcpy(dst + j, "...", 3); j += 3; }
    dst[j] = '\0';
}

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n) {
    /* FNV-1a, 64-bit */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}
#define HASH_SEED 0xcbf29ce484222325ULL

static uint32_t table_size_for(uint64_t n) {
    uint32_t size = 16;
    while (size < n * 2) size <<= 1;   /* load factor <= 0.5 */
    return size;
}

static const char *tok_text(const llmpi_tokenizer *t, int32_t id, size_t *len) {
    *len = t->text_off[id + 1] - t->text_off[id];
    return t->text_pool + t->text_off[id];
}

static int32_t find_token(const llmpi_tokenizer *t, const char *s, size_t n) {
    uint32_t i = (uint32_t)hash_bytes(HASH_SEED, s, n) & t->tok_mask;
    for (;;) {
        int32_t id = t->tok_slots[i];
        if (id < 0) return -1;
        size_t len;
        const char *txt = tok_text(t, id, &len);
        if (len == n && memcmp(txt, s, n) == 0) return id;
        i = (i + 1) & t->tok_mask;
    }
}

static uint64_t merge_hash(const char *l, size_t ln, const char *r, size_t rn) {
    uint64_t h = hash_bytes(HASH_SEED, l, ln);
    h = (h ^ 0x1FFu) * 0x100000001b3ULL;   /* separator outside the byte range */
    return hash_bytes(h, r, rn);
}

/* Rank of the merge (l, r), or -1. */
static int32_t find_merge(const llmpi_tokenizer *t, const char *l, size_t ln, const char *r, size_t rn) {
    if (!t->merge_slots) return -1;
    uint32_t i = (uint32_t)merge_hash(l, ln, r, rn) & t->merge_mask;
    for (;;) {
        int32_t m = t->merge_slots[i];
        if (m < 0) return -1;
        const merge_entry *e = &t->merges[m];
        if (e->left_len == ln && e->right_len == rn && memcmp(t->merge_text + e->off, l, ln) == 0 &&
            memcmp(t->merge_text + e->off + ln + 1, r, rn) == 0)
            return m;
        i = (i + 1) & t->merge_mask;
    }
}

/* ---- loading ------------------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    tok_pre_kind kind;
    bool clean_spaces, ignore_merges, add_bos;
} pre_info;

/* tokenizer.ggml.pre values (llama.cpp's names) and the behaviour llama.cpp attaches to them. */
static const pre_info k_pre_table[] = {
    { "default",          TOK_PRE_DEFAULT,      true,  false, false },
    { "gpt-2",            TOK_PRE_GPT2,         true,  false, false },
    { "phi-2",            TOK_PRE_GPT2,         true,  false, false },
    { "mpt",              TOK_PRE_GPT2,         true,  false, false },
    { "olmo",             TOK_PRE_GPT2,         true,  false, false },
    { "jais",             TOK_PRE_GPT2,         true,  false, false },
    { "llama3",           TOK_PRE_LLAMA3,       true,  true,  true  },
    { "llama-v3",         TOK_PRE_LLAMA3,       true,  true,  true  },
    { "llama-bpe",        TOK_PRE_LLAMA3,       true,  true,  true  },
    { "falcon3",          TOK_PRE_LLAMA3,       true,  true,  true  },
    { "pixtral",          TOK_PRE_LLAMA3,       true,  true,  true  },
    { "dbrx",             TOK_PRE_LLAMA3,       true,  false, false },
    { "smaug-bpe",        TOK_PRE_LLAMA3,       true,  false, false },
    { "qwen2",            TOK_PRE_QWEN2,        false, false, false },
    { "deepseek-r1-qwen", TOK_PRE_QWEN2,        false, false, false },
    { "stablelm2",        TOK_PRE_QWEN2,        true,  false, false },
    { "megrez",           TOK_PRE_QWEN2,        true,  false, false },
    { "smollm",           TOK_PRE_SMOLLM,       false, false, false },
    { "starcoder",        TOK_PRE_SMOLLM,       true,  false, false },
    { "refact",           TOK_PRE_SMOLLM,       true,  false, false },
    { "codeshell",        TOK_PRE_SMOLLM,       true,  false, false },
    { "command-r",        TOK_PRE_SMOLLM,       false, false, false },
    { "deepseek-llm",     TOK_PRE_DEEPSEEK_LLM, false, false, false },
};
#define N_PRE (sizeof k_pre_table / sizeof k_pre_table[0])

static void supported_pre_list(char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_PRE && used + 1 < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", k_pre_table[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

/* Reads an optional boolean key (bool or integer). Returns 1 if read, 0 if absent, -1 on a bad type. */
static int read_bool(const gguf_file *f, const char *key, bool *out, char *err, size_t errlen) {
    bool b;
    gguf_status st = gguf_get_bool(f, key, &b);
    if (st == GGUF_OK) { *out = b; return 1; }
    if (st == GGUF_E_NOT_FOUND) return 0;
    int64_t v;
    if (gguf_get_int(f, key, &v) == GGUF_OK) { *out = v != 0; return 1; }
    set_err(err, errlen, "%s must be a bool", key);
    return -1;
}

/* Reads an optional token-id key. A value of -1 / 0xFFFFFFFF means "none given" (keeps *id). strict: an id
 * outside the vocabulary is an error; otherwise it is ignored (llama.cpp warns and keeps the default). */
static int read_token_id(const gguf_file *f, const char *key, int32_t n_vocab, bool strict, int32_t *id,
                         char *err, size_t errlen) {
    int64_t v;
    gguf_status st = gguf_get_int(f, key, &v);
    if (st == GGUF_E_NOT_FOUND) return 0;
    if (st != GGUF_OK) { set_err(err, errlen, "%s must be an integer token id", key); return -1; }
    if (v == -1 || v == 0xFFFFFFFFLL) return 0;
    if (v < 0 || v >= n_vocab) {
        if (!strict) return 0;
        set_err(err, errlen, "%s = %lld is outside the vocabulary (%d tokens)", key, (long long)v, (int)n_vocab);
        return -1;
    }
    *id = (int32_t)v;
    return 0;
}

static int32_t find_token_cstr(const llmpi_tokenizer *t, const char *s) { return find_token(t, s, strlen(s)); }

/* First token present from a NULL-terminated list of texts (llama.cpp scans a hash map, so when several are
 * present its choice is arbitrary; we take the list order). Marks it CONTROL like llama.cpp does. */
static int32_t detect_by_text(llmpi_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int32_t id = find_token_cstr(t, *names);
        if (id >= 0) {
            t->attr[id] |= ATTR_CONTROL;
            return id;
        }
    }
    return -1;
}

/* Appends token id's rendered piece (llama.cpp's token_to_piece with special = true) to *pool. */
static int build_piece(const llmpi_tokenizer *t, int32_t id, char **pool, size_t *used, size_t *cap) {
    size_t len;
    const char *txt = tok_text(t, id, &len);
    const uint16_t a = t->attr[id];
    /* worst case: BPE text with unmapped characters -> "[UNK_BYTE_0x" + 8 hex + text + "]" per char */
    size_t need = *used + len * (len + 24) + 8;
    if (need > *cap) {
        size_t ncap = *cap ? *cap : 1 << 16;
        while (ncap < need) ncap *= 2;
        char *p = realloc(*pool, ncap);
        if (!p) return -1;
        *pool = p;
        *cap = ncap;
    }
    char *out = *pool + *used;
    size_t n = 0;
    if (a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) {
        memcpy(out, txt, len);
        n = len;
    } else if (a & ATTR_NORMAL) {
        if (t->kind == VOCAB_SPM) {
            for (size_t i = 0; i < len; i++) {
                if (i + 2 < len && memcmp(txt + i, "\xE2\x96\x81", 3) == 0) { out[n++] = ' '; i += 2; }
                else out[n++] = txt[i];
            }
        } else {
            uint32_t *cpts = malloc((len ? len : 1) * sizeof *cpts);
            if (!cpts) return -1;
            size_t nc = tok_utf8_to_cpts(txt, len, cpts);
            for (size_t i = 0; i < nc; i++) {
                int b = tok_cp_to_byte(cpts[i]);
                if (b >= 0) { out[n++] = (char)b; continue; }
                /* llama.cpp's llama_decode_text marker for characters outside the byte mapping */
                char u[4];
                int ul = tok_utf8_encode(cpts[i], u);
                memcpy(out + n, "[UNK_BYTE_0x", 12);
                n += 12;
                for (int k = 0; k < ul; k++) n += (size_t)sprintf(out + n, "%02x", (unsigned char)u[k]);
                memcpy(out + n, txt, len);
                n += len;
                out[n++] = ']';
            }
            free(cpts);
        }
    } else if (a & ATTR_BYTE) {
        /* the byte is parsed from the text "<0xNN>" (characters 3-4) */
        if (len >= 3) {
            char hex[3] = { 0 };
            memcpy(hex, txt + 3, len - 3 < 2 ? len - 3 : 2);
            out[n++] = (char)(unsigned char)strtol(hex, NULL, 16);
        }
    }
    *used += n;
    return 0;
}

static int cmp_special(const void *a, const void *b, const llmpi_tokenizer *t) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = t->text_off[x + 1] - t->text_off[x], ly = t->text_off[y + 1] - t->text_off[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Sorts the special-token list by (text length desc, id asc) with a bottom-up merge sort (qsort has no
 * context argument in C11). llama.cpp's std::sort leaves equal lengths in unspecified order. */
static void sort_special(llmpi_tokenizer *t, int32_t *tmp) {
    int32_t n = t->n_special;
    int32_t *a = t->special, *b = tmp;
    for (int32_t width = 1; width < n; width *= 2) {
        for (int32_t lo = 0; lo < n; lo += 2 * width) {
            int32_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) b[k++] = cmp_special(&a[j], &a[i], t) < 0 ? a[j++] : a[i++];
            while (i < mid) b[k++] = a[i++];
            while (j < hi) b[k++] = a[j++];
        }
        int32_t *s = a; a = b; b = s;
    }
    if (a != t->special) memcpy(t->special, a, (size_t)n * sizeof *a);
}

void tokenizer_free(llmpi_tokenizer *t) {
    if (!t) return;
    free(t->text_pool);
    free(t->text_off);
    free(t->score);
    free(t->attr);
    free(t->piece_pool);
    free(t->piece_off);
    free(t->tok_slots);
    free(t->merge_text);
    free(t->merges);
    free(t->merge_slots);
    free(t->special);
    free(t);
}

static int load_merges(llmpi_tokenizer *t, const gguf_value *arr, char *err, size_t errlen) {
    if (arr->arr.elem_type != GGUF_TYPE_STRING) {
        set_err(err, errlen, "tokenizer.ggml.merges must be an array of strings (is an array of %s)",
                gguf_type_name(arr->arr.elem_type));
        return -1;
    }
    if (arr->arr.n > (uint64_t)INT32_MAX / 2) {
        set_err(err, errlen, "tokenizer.ggml.merges has too many entries (%llu)", (unsigned long long)arr->arr.n);
        return -1;
    }
    const int32_t n = (int32_t)arr->arr.n;
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) total += arr->arr.strs[i].len + 1;
    if (total > UINT32_MAX) { set_err(err, errlen, "tokenizer.ggml.merges is too large"); return -1; }
    t->merge_text = malloc(total ? total : 1);
    t->merges = malloc((size_t)(n ? n : 1) * sizeof *t->merges);
    t->merge_mask = table_size_for((uint64_t)n) - 1;
    t->merge_slots = malloc(((size_t)t->merge_mask + 1) * sizeof *t->merge_slots);
    if (!t->merge_text || !t->merges || !t->merge_slots) { set_err(err, errlen, "out of memory"); return -1; }
    memset(t->merge_slots, 0xFF, ((size_t)t->merge_mask + 1) * sizeof *t->merge_slots);
    uint32_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        const gguf_str s = arr->arr.strs[i];
        /* split at the first space after position 0 (llama.cpp: word.find(' ', 1)) */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp) {
            char q[64];
            quote_str(q, sizeof q, s.ptr, s.len);
            set_err(err, errlen, "tokenizer.ggml.merges[%d] = \"%s\" has no space between its two parts", (int)i, q);
            return -1;
        }
        merge_entry *e = &t->merges[i];
        e->off = off;
        e->left_len = (uint32_t)(sp - s.ptr);
        e->right_len = (uint32_t)(s.len - e->left_len - 1);
        memcpy(t->merge_text + off, s.ptr, s.len);
        off += (uint32_t)s.len + 1;
        const char *l = t->merge_text + e->off, *r = l + e->left_len + 1;
        /* a repeated pair keeps its first (lowest) rank, as llama.cpp's emplace does */
        if (find_merge(t, l, e->left_len, r, e->right_len) >= 0) continue;
        uint32_t slot = (uint32_t)merge_hash(l, e->left_len, r, e->right_len) & t->merge_mask;
        while (t->merge_slots[slot] >= 0) slot = (slot + 1) & t->merge_mask;
        t->merge_slots[slot] = i;
    }
    t->n_merges = n;
    return 0;
}

static int load_vocab(llmpi_tokenizer *t, const gguf_file *f, char *err, size_t errlen) {
    const gguf_value *toks;
    gguf_status st = gguf_get_arr(f, "tokenizer.ggml.tokens", &toks);
    if (st == GGUF_E_NOT_FOUND) { set_err(err, errlen, "no tokenizer.ggml.tokens in file"); return -1; }
    if (st != GGUF_OK || toks->arr.elem_type != GGUF_TYPE_STRING) {
        set_err(err, errlen, "tokenizer.ggml.tokens must be an array of strings");
        return -1;
    }
    if (toks->arr.n == 0) { set_err(err, errlen, "tokenizer.ggml.tokens is empty"); return -1; }
    if (toks->arr.n > (1u << 26)) {
        set_err(err, errlen, "tokenizer.ggml.tokens has too many entries (%llu)", (unsigned long long)toks->arr.n);
        return -1;
    }
    const int32_t n = (int32_t)toks->arr.n;
    t->n_vocab = n;

    const gguf_value *scores = NULL, *types = NULL;
    st = gguf_get_arr(f, "tokenizer.ggml.scores", &scores);
    if (st == GGUF_E_TYPE || (st == GGUF_OK && gguf_type_size(scores->arr.elem_type) == 0)) {
        set_err(err, errlen, "tokenizer.ggml.scores must be an array of numbers");
        return -1;
    }
    if (scores && scores->arr.n < (uint64_t)n) {
        set_err(err, errlen, "tokenizer.ggml.scores has %llu entries for %d tokens",
                (unsigned long long)scores->arr.n, (int)n);
        return -1;
    }
    st = gguf_get_arr(f, "tokenizer.ggml.token_type", &types);
    if (st == GGUF_E_TYPE || (st == GGUF_OK && gguf_type_size(types->arr.elem_type) == 0)) {
        set_err(err, errlen, "tokenizer.ggml.token_type must be an array of integers");
        return -1;
    }
    if (types && types->arr.n < (uint64_t)n) {
        set_err(err, errlen, "tokenizer.ggml.token_type has %llu entries for %d tokens",
                (unsigned long long)types->arr.n, (int)n);
        return -1;
    }

    /* texts; an empty text becomes "[EMPTY_<id>]" as in llama.cpp */
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) total += toks->arr.strs[i].len ? toks->arr.strs[i].len : 24;
    if (total >= UINT32_MAX) { set_err(err, errlen, "tokenizer.ggml.tokens is too large"); return -1; }
    t->text_pool = malloc(total ? total : 1);
    t->text_off = malloc(((size_t)n + 1) * sizeof *t->text_off);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->attr = malloc((size_t)n * sizeof *t->attr);
    t->tok_mask = table_size_for((uint64_t)n) - 1;
    t->tok_slots = malloc(((size_t)t->tok_mask + 1) * sizeof *t->tok_slots);
    if (!t->text_pool || !t->text_off || !t->score || !t->attr || !t->tok_slots) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    memset(t->tok_slots, 0xFF, ((size_t)t->tok_mask + 1) * sizeof *t->tok_slots);
    uint32_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        const gguf_str s = toks->arr.strs[i];
        t->text_off[i] = off;
        if (s.len) {
            memcpy(t->text_pool + off, s.ptr, s.len);
            off += (uint32_t)s.len;
        } else {
            off += (uint32_t)sprintf(t->text_pool + off, "[EMPTY_%d]", (int)i);
        }
        t->text_off[i + 1] = off;
        size_t len;
        const char *txt = tok_text(t, i, &len);
        uint32_t slot = (uint32_t)hash_bytes(HASH_SEED, txt, len) & t->tok_mask;
        for (; t->tok_slots[slot] >= 0; slot = (slot + 1) & t->tok_mask) {
            size_t olen;
            const char *o = tok_text(t, t->tok_slots[slot], &olen);
            if (olen == len && memcmp(o, txt, len) == 0) {
                char q[64];
                quote_str(q, sizeof q, txt, len);
                set_err(err, errlen, "duplicate token in vocabulary: \"%s\" has ids %d and %d", q,
                        (int)t->tok_slots[slot], (int)i);
                return -1;
            }
        }
        t->tok_slots[slot] = i;

        if (scores) {
            double v = 0;
            gguf_arr_float(scores, (uint64_t)i, &v);
            t->score[i] = (float)v;
        }
        uint16_t a = ATTR_NORMAL;
        if (types) {
            int64_t ty = 0;
            gguf_arr_int(types, (uint64_t)i, &ty);
            switch (ty) {
            case 1: a = ATTR_NORMAL; break;
            case 2: a = ATTR_UNKNOWN; break;
            case 3: a = ATTR_CONTROL; break;
            case 4: a = ATTR_USER_DEFINED; break;
            case 5: a = ATTR_UNUSED; break;
            case 6: a = ATTR_BYTE; break;
            default: a = 0; break;           /* undefined */
            }
        }
        t->attr[i] = a;
    }
    return 0;
}

/* Texts llama.cpp recognises when the id keys are absent (it forces them to CONTROL). */
static const char *const k_eot_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
    "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "<end_of_utterance>", NULL
};
static const char *const k_eom_names[] = { "<|eom_id|>", NULL };
static const char *const k_fim_pre_names[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL
};
static const char *const k_fim_suf_names[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>",
    "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL
};
static const char *const k_fim_mid_names[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
    "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL
};
static const char *const k_fim_pad_names[] = { "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL };
static const char *const k_fim_rep_names[] = { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL };
static const char *const k_fim_sep_names[] = { "<|file_sep|>", NULL };
/* Texts llama.cpp treats as end of generation (and forces to CONTROL). */
static const char *const k_eog_names[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "[e~[", NULL
};

/* Id of text if that token is marked end-of-generation, else -1. */
static int32_t eog_token(const llmpi_tokenizer *t, const char *text) {
    int32_t id = find_token_cstr(t, text);
    return id >= 0 && (t->attr[id] & ATTR_EOG) ? id : -1;
}

static int setup_special(llmpi_tokenizer *t, const gguf_file *f, char *err, size_t errlen) {
    const int32_t n = t->n_vocab;
    /* defaults by vocabulary kind, dropped when outside the vocabulary */
    t->bos = t->kind == VOCAB_SPM ? 1 : 11;
    t->eos = t->kind == VOCAB_SPM ? 2 : 11;
    t->unk = t->kind == VOCAB_SPM ? 0 : -1;
    t->eot = t->eom = -1;
    int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1, ignored = -1;
    if (t->bos >= n) t->bos = -1;
    if (t->eos >= n) t->eos = -1;
    if (t->unk >= n) t->unk = -1;

    static const struct { const char *key; bool strict; } keys[] = {
        { "tokenizer.ggml.bos_token_id", true },      { "tokenizer.ggml.eos_token_id", true },
        { "tokenizer.ggml.eot_token_id", true },      { "tokenizer.ggml.eom_token_id", true },
        { "tokenizer.ggml.unknown_token_id", true },  { "tokenizer.ggml.seperator_token_id", false },
        { "tokenizer.ggml.padding_token_id", false }, { "tokenizer.ggml.mask_token_id", false },
        { "tokenizer.ggml.fim_pre_token_id", false }, { "tokenizer.ggml.fim_suf_token_id", false },
        { "tokenizer.ggml.fim_mid_token_id", false }, { "tokenizer.ggml.fim_pad_token_id", false },
        { "tokenizer.ggml.fim_rep_token_id", false }, { "tokenizer.ggml.fim_sep_token_id", false },
    };
    int32_t *dst[] = { &t->bos, &t->eos, &t->eot, &t->eom, &t->unk, &ignored, &ignored, &ignored,
                       &fim_pre, &fim_suf, &fim_mid, &fim_pad, &fim_rep, &fim_sep };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (read_token_id(f, keys[i].key, n, keys[i].strict, dst[i], err, errlen) < 0) return -1;

    if (read_bool(f, "tokenizer.ggml.add_bos_token", &t->add_bos, err, errlen) < 0) return -1;
    if (read_bool(f, "tokenizer.ggml.add_eos_token", &t->add_eos, err, errlen) < 0) return -1;
    if (t->add_bos && t->bos < 0) {
        set_err(err, errlen, "tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
        return -1;
    }
    if (t->add_eos && t->eos < 0) {
        set_err(err, errlen, "tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
        return -1;
    }

    /* llama.cpp finds these by text when the keys are absent (and forces them to CONTROL) */
    if (t->eot < 0) t->eot = detect_by_text(t, k_eot_names);
    if (t->eom < 0) t->eom = detect_by_text(t, k_eom_names);
    if (fim_pre < 0) fim_pre = detect_by_text(t, k_fim_pre_names);
    if (fim_suf < 0) fim_suf = detect_by_text(t, k_fim_suf_names);
    if (fim_mid < 0) fim_mid = detect_by_text(t, k_fim_mid_names);
    if (fim_pad < 0) fim_pad = detect_by_text(t, k_fim_pad_names);
    if (fim_rep < 0) fim_rep = detect_by_text(t, k_fim_rep_names);
    if (fim_sep < 0) fim_sep = detect_by_text(t, k_fim_sep_names);

    /* end-of-generation set, in llama.cpp's order */
    const int32_t fim_eog[] = { fim_pad, fim_rep, fim_sep };
    for (size_t i = 0; i < 3; i++)
        if (fim_eog[i] >= 0) t->attr[fim_eog[i]] |= ATTR_EOG;
    for (const char *const *nm = k_eog_names; *nm; nm++) {
        int32_t id = find_token_cstr(t, *nm);
        if (id >= 0) t->attr[id] |= ATTR_EOG | ATTR_CONTROL;
    }
    /* gpt-oss: these are always rendered (USER_DEFINED) */
    static const char *const k_always_rendered[] = { "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL };
    for (const char *const *nm = k_always_rendered; *nm; nm++) {
        int32_t id = find_token_cstr(t, *nm);
        if (id >= 0) t->attr[id] = (uint16_t)((t->attr[id] & ATTR_EOG) | ATTR_USER_DEFINED);
    }
    const int32_t named[] = { t->eos, t->eot, t->eom };
    for (size_t i = 0; i < 3; i++)
        if (named[i] >= 0) t->attr[named[i]] |= ATTR_EOG;
    /* o200k_harmony / solar-open: with <|return|> + <|call|> (or <|calls|> + <|flush|>), <|end|> is not EOG */
    const int32_t id_end = eog_token(t, "<|end|>");
    const bool has_call = eog_token(t, "<|call|>") >= 0 || eog_token(t, "<|calls|>") >= 0;
    if (id_end >= 0 && has_call && (eog_token(t, "<|return|>") >= 0 || eog_token(t, "<|flush|>") >= 0))
        t->attr[id_end] = ATTR_USER_DEFINED;
    /* gemma4 / paddleocr: with <|tool_response> as EOG, </s> is an ordinary token */
    const int32_t id_s = eog_token(t, "</s>");
    if (id_s >= 0 && eog_token(t, "<|tool_response>") >= 0) t->attr[id_s] = ATTR_NORMAL;
    return 0;
}

static int setup_special_cache_and_pieces(llmpi_tokenizer *t, const gguf_file *f, char *err, size_t errlen) {
    const int32_t n = t->n_vocab;
    int32_t count = 0;
    for (int32_t i = 0; i < n; i++)
        if (t->attr[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) count++;
    t->special = malloc((size_t)(count ? count : 1) * sizeof *t->special);
    int32_t *tmp = malloc((size_t)(count ? count : 1) * sizeof *tmp);
    if (!t->special || !tmp) { free(tmp); set_err(err, errlen, "out of memory"); return -1; }
    for (int32_t i = 0; i < n; i++)
        if (t->attr[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) t->special[t->n_special++] = i;
    sort_special(t, tmp);
    free(tmp);

    /* rendered pieces */
    size_t used = 0, cap = 0;
    t->piece_off = malloc(((size_t)n + 1) * sizeof *t->piece_off);
    if (!t->piece_off) { set_err(err, errlen, "out of memory"); return -1; }
    for (int32_t i = 0; i < n; i++) {
        t->piece_off[i] = (uint32_t)used;
        if (build_piece(t, i, &t->piece_pool, &used, &cap) < 0 || used > UINT32_MAX) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        size_t plen = used - t->piece_off[i];
        if ((int)plen > t->max_piece_len) t->max_piece_len = (int)plen;
    }
    t->piece_off[n] = (uint32_t)used;

    /* byte fallback tokens */
    for (int b = 0; b < 256; b++) {
        t->byte_token[b] = -1;
        const char one = (char)b;
        if (t->kind == VOCAB_SPM) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            t->byte_token[b] = find_token_cstr(t, hex);
        }
        if (t->byte_token[b] < 0) t->byte_token[b] = find_token(t, &one, 1);
    }

    /* Phi-3 models (by general.name) strip whitespace after special tokens, as llama.cpp does */
    gguf_str name;
    if (gguf_get_str(f, "general.name", &name) == GGUF_OK) {
        char lower[128];
        size_t ln = name.len < sizeof lower - 1 ? (size_t)name.len : sizeof lower - 1;
        for (size_t i = 0; i < ln; i++) lower[i] = (char)tolower((unsigned char)name.ptr[i]);
        lower[ln] = '\0';
        if (strstr(lower, "phi-3") || strstr(lower, "phi3")) {
            for (int32_t i = 0; i < t->n_special; i++) t->attr[t->special[i]] |= ATTR_RSTRIP;
            int32_t id = find_token_cstr(t, "</s>");
            if (id >= 0) t->attr[id] |= ATTR_RSTRIP;
            static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>" };
            for (size_t i = 0; i < 3; i++) {
                id = find_token_cstr(t, keep[i]);
                if (id >= 0) t->attr[id] &= (uint16_t)~ATTR_RSTRIP;
            }
        }
    }
    return 0;
}

int tokenizer_create(const gguf_file *f, llmpi_tokenizer **out, char *err, size_t errlen) {
    if (out) *out = NULL;
    if (!f || !out) { set_err(err, errlen, "invalid arguments"); return -1; }
    gguf_str model;
    gguf_status st = gguf_get_str(f, "tokenizer.ggml.model", &model);
    if (st == GGUF_E_NOT_FOUND) { set_err(err, errlen, "no tokenizer in file (no tokenizer.ggml.model key)"); return -1; }
    if (st != GGUF_OK) { set_err(err, errlen, "tokenizer.ggml.model must be a string"); return -1; }

    llmpi_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { set_err(err, errlen, "out of memory"); return -1; }
    char q[64];
    quote_str(q, sizeof q, model.ptr, model.len);
    if (gguf_str_eq(model, "llama")) {
        t->kind = VOCAB_SPM;
        t->add_space_prefix = true;
        t->add_bos = true;
        snprintf(t->pre_name, sizeof t->pre_name, "default");
    } else if (gguf_str_eq(model, "gpt2")) {
        t->kind = VOCAB_BPE;
        gguf_str pre = { "", 0 };
        st = gguf_get_str(f, "tokenizer.ggml.pre", &pre);
        if (st != GGUF_OK && st != GGUF_E_NOT_FOUND) {
            set_err(err, errlen, "tokenizer.ggml.pre must be a string");
            goto fail;
        }
        const pre_info *info = NULL;
        if (pre.len == 0) info = &k_pre_table[0];   /* llama.cpp: missing pre-tokenizer -> 'default' */
        for (size_t i = 0; i < N_PRE && !info; i++)
            if (gguf_str_eq(pre, k_pre_table[i].name)) info = &k_pre_table[i];
        if (!info) {
            char list[600], qp[64];
            supported_pre_list(list, sizeof list);
            quote_str(qp, sizeof qp, pre.ptr, pre.len);
            set_err(err, errlen, "unsupported tokenizer.ggml.pre '%s' (supported: %s)", qp, list);
            goto fail;
        }
        t->pre = info->kind;
        t->clean_spaces = info->clean_spaces;
        t->ignore_merges = info->ignore_merges;
        t->add_bos = info->add_bos;
        snprintf(t->pre_name, sizeof t->pre_name, "%s", info->name);
    } else if (gguf_str_eq(model, "none") || gguf_str_eq(model, "no_vocab")) {
        set_err(err, errlen, "the file has no vocabulary (tokenizer.ggml.model '%s')", q);
        goto fail;
    } else {
        set_err(err, errlen, "unsupported tokenizer.ggml.model '%s' (supported: llama, gpt2)", q);
        goto fail;
    }
    if (read_bool(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err, errlen) < 0) goto fail;

    if (load_vocab(t, f, err, errlen) < 0) goto fail;
    if (t->kind == VOCAB_BPE) {
        const gguf_value *merges;
        st = gguf_get_arr(f, "tokenizer.ggml.merges", &merges);
        if (st == GGUF_E_NOT_FOUND) { set_err(err, errlen, "no tokenizer.ggml.merges in a gpt2 tokenizer"); goto fail; }
        if (st != GGUF_OK) { set_err(err, errlen, "tokenizer.ggml.merges must be an array of strings"); goto fail; }
        if (load_merges(t, merges, err, errlen) < 0) goto fail;
    }
    if (setup_special(t, f, err, errlen) < 0) goto fail;
    if (setup_special_cache_and_pieces(t, f, err, errlen) < 0) goto fail;
    *out = t;
    return 0;
fail:
    tokenizer_free(t);
    return -1;
}

/* ---- accessors ---------------------------------------------------------------------------------- */

static bool valid_id(const llmpi_tokenizer *t, int32_t id) { return t && id >= 0 && id < t->n_vocab; }

int     tokenizer_n_vocab(const llmpi_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t tokenizer_bos(const llmpi_tokenizer *t) { return t ? t->bos : -1; }
int32_t tokenizer_eos(const llmpi_tokenizer *t) { return t ? t->eos : -1; }
int32_t tokenizer_eot(const llmpi_tokenizer *t) { return t ? t->eot : -1; }
int32_t tokenizer_eom(const llmpi_tokenizer *t) { return t ? t->eom : -1; }
int32_t tokenizer_unk(const llmpi_tokenizer *t) { return t ? t->unk : -1; }
bool    tokenizer_add_bos(const llmpi_tokenizer *t) { return t && t->add_bos; }
bool    tokenizer_add_eos(const llmpi_tokenizer *t) { return t && t->add_eos; }
bool    tokenizer_add_space_prefix(const llmpi_tokenizer *t) { return t && t->add_space_prefix; }
bool    tokenizer_is_eog(const llmpi_tokenizer *t, int32_t id) { return valid_id(t, id) && (t->attr[id] & ATTR_EOG); }
bool    tokenizer_is_control(const llmpi_tokenizer *t, int32_t id) {
    return valid_id(t, id) && (t->attr[id] & (ATTR_CONTROL | ATTR_UNKNOWN));
}
const char *tokenizer_model_name(const llmpi_tokenizer *t) { return !t ? "" : t->kind == VOCAB_SPM ? "llama" : "gpt2"; }
const char *tokenizer_pre_name(const llmpi_tokenizer *t) { return t ? t->pre_name : ""; }
int     tokenizer_max_piece_len(const llmpi_tokenizer *t) { return t ? t->max_piece_len : 0; }

const char *tokenizer_token_text(const llmpi_tokenizer *t, int32_t id, int *len) {
    if (!valid_id(t, id)) return NULL;
    size_t n;
    const char *s = tok_text(t, id, &n);
    if (len) *len = (int)n;
    return s;
}

int32_t tokenizer_find_token(const llmpi_tokenizer *t, const char *text, size_t len) {
    return t && (text || len == 0) ? find_token(t, text ? text : "", len) : -1;
}

/* Rendered piece of id (NULL and length 0 when suppressed). */
static const char *piece_of(const llmpi_tokenizer *t, int32_t id, bool render_special, size_t *len) {
    if (!render_special && (t->attr[id] & (ATTR_UNKNOWN | ATTR_CONTROL))) { *len = 0; return NULL; }
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece_pool + t->piece_off[id];
}

int tokenizer_token_to_piece(const llmpi_tokenizer *t, int32_t id, char *buf, int buflen, bool render_special) {
    if (!valid_id(t, id)) return -1;
    size_t len;
    const char *p = piece_of(t, id, render_special, &len);
    if (buflen < 0 || len > (size_t)buflen) return (int)len;
    if (len) memcpy(buf, p, len);
    return (int)len;
}

/* ---- encoding ----------------------------------------------------------------------------------- */

typedef struct {
    int32_t *out;
    int      max;
    int64_t  n;
} sink;

static void emit(sink *s, int32_t id) {
    if (s->n < s->max) s->out[s->n] = id;
    s->n++;
}

/* A fragment of the input: raw text [off, off+len) (token < 0) or an already-recognised special token. */
typedef struct {
    int32_t token;
    size_t  off, len;
} fragment;

typedef struct {
    fragment *v;
    size_t n, cap;
} frag_list;

static int frag_push(frag_list *l, int32_t token, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        fragment *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (fragment){ token, off, len };
    return 0;
}

static bool is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Position of needle in hay[0..hn) or -1. */
static ptrdiff_t find_bytes(const char *hay, size_t hn, const char *needle, size_t nn) {
    if (nn == 0 || nn > hn) return -1;
    const char *p = hay, *end = hay + hn - nn + 1;
    while (p < end) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p) return -1;
        if (memcmp(p, needle, nn) == 0) return p - hay;
        p++;
    }
    return -1;
}

/* llama.cpp's tokenizer_st_partition: for each special token (longest first), split every raw fragment
 * at each of its occurrences. CONTROL/UNKNOWN tokens only when parse_special. */
static int partition_special(const llmpi_tokenizer *t, const char *text, size_t len, bool parse_special,
                             frag_list *frags) {
    frag_list next = { 0 };
    frags->n = 0;
    if (len == 0) return 0;
    if (frag_push(frags, -1, 0, len) < 0) return -1;
    for (int32_t k = 0; k < t->n_special; k++) {
        const int32_t id = t->special[k];
        const uint16_t a = t->attr[id];
        if (!parse_special && (a & (ATTR_CONTROL | ATTR_UNKNOWN))) continue;
        size_t tlen;
        const char *ttext = tok_text(t, id, &tlen);
        /* next is only built from the first fragment that contains the token on (earlier ones are copied
         * then), so a token absent from the text costs one search per fragment */
        next.n = 0;
        bool changed = false;
        for (size_t i = 0; i < frags->n; i++) {
            const fragment fr = frags->v[i];
            if (fr.token >= 0) {
                if (changed && frag_push(&next, fr.token, 0, 0) < 0) goto oom;
                continue;
            }
            size_t pos = fr.off, end = fr.off + fr.len;
            for (;;) {
                ptrdiff_t m = find_bytes(text + pos, end - pos, ttext, tlen);
                if (m < 0) break;
                if (!changed) {
                    for (size_t j = 0; j < i; j++)
                        if (frag_push(&next, frags->v[j].token, frags->v[j].off, frags->v[j].len) < 0) goto oom;
                    changed = true;
                }
                size_t match = pos + (size_t)m, left_len = (size_t)m;
                if (a & ATTR_LSTRIP)
                    while (left_len > 0 && is_c_space(text[pos + left_len - 1])) left_len--;
                if (left_len > 0 && frag_push(&next, -1, pos, left_len) < 0) goto oom;
                if (frag_push(&next, id, 0, 0) < 0) goto oom;
                pos = match + tlen;
                if (a & ATTR_RSTRIP)
                    while (pos < end && is_c_space(text[pos])) pos++;
            }
            if (changed && pos < end && frag_push(&next, -1, pos, end - pos) < 0) goto oom;
        }
        if (changed) {
            frag_list tmp = *frags;
            *frags = next;
            next = tmp;
        }
    }
    free(next.v);
    return 0;
oom:
    free(next.v);
    return -1;
}

/* Merge candidate: adjacent symbols (left, right) whose lengths were left_n/right_n when it was queued.
 * SPM orders by score (higher first), BPE by rank (lower first); ties go to the leftmost pair. */
typedef struct {
    int32_t left, right;
    uint32_t left_n, right_n;
    float score;
    int32_t rank;
} bigram;

typedef struct {
    bigram *v;
    size_t n, cap;
    bool by_score;
} bigram_heap;

static bool bigram_before(const bigram_heap *h, const bigram *a, const bigram *b) {
    if (h->by_score) {
        if (a->score != b->score) return a->score > b->score;
    } else if (a->rank != b->rank) {
        return a->rank < b->rank;
    }
    return a->left < b->left;
}

static int heap_push(bigram_heap *h, bigram b) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(h, &b, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = b;
    return 0;
}

static bigram heap_pop(bigram_heap *h) {
    bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(h, &h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(h, &h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* Symbols of the word being merged: text[off .. off+n), linked list through prev/next (-1 = none). */
typedef struct {
    int32_t prev, next;
    uint32_t off, n;
} symbol;

typedef struct {
    symbol *sym;
    size_t cap;
    bigram_heap heap;
    char *buf;          /* escaped / byte-encoded text */
    size_t buf_cap;
} work;

static int ensure_symbols(work *w, size_t n) {
    if (n <= w->cap) return 0;
    symbol *s = realloc(w->sym, n * sizeof *s);
    if (!s) return -1;
    w->sym = s;
    w->cap = n;
    return 0;
}

static int ensure_buf(work *w, size_t n) {
    if (n <= w->buf_cap) return 0;
    char *b = realloc(w->buf, n);
    if (!b) return -1;
    w->buf = b;
    w->buf_cap = n;
    return 0;
}

/* Splits text[0..len) into UTF-8 characters (llama.cpp's unicode_len_utf8, clipped at the end). */
static size_t split_symbols(work *w, const char *text, size_t len) {
    size_t n = 0, off = 0;
    while (off < len) {
        size_t l = tok_utf8_len((unsigned char)text[off]);
        if (l > len - off) l = len - off;
        w->sym[n] = (symbol){ (int32_t)n - 1, off + l == len ? -1 : (int32_t)n + 1, (uint32_t)off, (uint32_t)l };
        off += l;
        n++;
    }
    return n;
}

static int spm_try_bigram(const llmpi_tokenizer *t, work *w, const char *text, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return 0;
    const symbol *l = &w->sym[left], *r = &w->sym[right];
    int32_t id = find_token(t, text + l->off, (size_t)l->n + r->n);
    if (id < 0) return 0;
    bigram b = { left, right, l->n, r->n, t->score[id], 0 };
    return heap_push(&w->heap, b);
}

/* SentencePiece BPE over text[0..len) (already space-escaped). */
static int spm_tokenize(const llmpi_tokenizer *t, work *w, const char *text, size_t len, sink *out) {
    if (len == 0) return 0;
    if (ensure_symbols(w, len) < 0) return -1;
    size_t n = split_symbols(w, text, len);
    w->heap.n = 0;
    w->heap.by_score = true;
    for (size_t i = 1; i < n; i++)
        if (spm_try_bigram(t, w, text, (int32_t)i - 1, (int32_t)i) < 0) return -1;
    while (w->heap.n) {
        bigram b = heap_pop(&w->heap);
        symbol *l = &w->sym[b.left], *r = &w->sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.left_n + b.right_n) continue;   /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = b.left;
        if (spm_try_bigram(t, w, text, l->prev, b.left) < 0) return -1;
        if (spm_try_bigram(t, w, text, b.left, l->next) < 0) return -1;
    }
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const symbol *s = &w->sym[i];
        int32_t id = find_token(t, text + s->off, s->n);
        if (id >= 0) { emit(out, id); continue; }
        /* byte fallback: each byte as <0xNN> (llama.cpp throws when neither form exists; we use unk) */
        for (uint32_t j = 0; j < s->n; j++) {
            int32_t bt = t->byte_token[(unsigned char)text[s->off + j]];
            if (bt < 0) bt = t->unk;
            if (bt >= 0) emit(out, bt);
        }
    }
    return 0;
}

static int spm_fragment(const llmpi_tokenizer *t, work *w, const char *text, size_t len, bool prefix_space,
                        sink *out) {
    size_t n_space = prefix_space;
    for (size_t i = 0; i < len; i++) n_space += text[i] == ' ';
    size_t elen = len + prefix_space + 2 * n_space;
    if (ensure_buf(w, elen ? elen : 1) < 0) return -1;
    char *e = w->buf;
    size_t k = 0;
    if (prefix_space) { memcpy(e, "\xE2\x96\x81", 3); k = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(e + k, "\xE2\x96\x81", 3); k += 3; }
        else e[k++] = text[i];
    }
    return spm_tokenize(t, w, e, k, out);
}

static int bpe_try_bigram(const llmpi_tokenizer *t, work *w, const char *text, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return 0;
    const symbol *l = &w->sym[left], *r = &w->sym[right];
    int32_t rank = find_merge(t, text + l->off, l->n, text + r->off, r->n);
    if (rank < 0) return 0;
    bigram b = { left, right, l->n, r->n, 0.0f, rank };
    return heap_push(&w->heap, b);
}

/* Byte-level BPE of one pre-tokenized word (already byte-encoded) text[0..len). */
static int bpe_word(const llmpi_tokenizer *t, work *w, const char *text, size_t len, sink *out) {
    if (len == 0) return 0;
    if (t->ignore_merges) {
        int32_t id = find_token(t, text, len);
        if (id >= 0) { emit(out, id); return 0; }
    }
    if (ensure_symbols(w, len) < 0) return -1;
    size_t n = split_symbols(w, text, len);
    w->heap.n = 0;
    w->heap.by_score = false;
    for (size_t i = 1; i < n; i++)
        if (bpe_try_bigram(t, w, text, (int32_t)i - 1, (int32_t)i) < 0) return -1;
    while (w->heap.n) {
        bigram b = heap_pop(&w->heap);
        symbol *l = &w->sym[b.left], *r = &w->sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n != b.left_n || r->n != b.right_n) continue;   /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = b.left;
        if (bpe_try_bigram(t, w, text, l->prev, b.left) < 0) return -1;
        if (bpe_try_bigram(t, w, text, b.left, l->next) < 0) return -1;
    }
    for (int32_t i = 0; i != -1; i = w->sym[i].next) {
        const symbol *s = &w->sym[i];
        int32_t id = find_token(t, text + s->off, s->n);
        if (id >= 0) { emit(out, id); continue; }
        /* llama.cpp falls back to single-byte texts and silently drops bytes that have none */
        for (uint32_t j = 0; j < s->n; j++) {
            int32_t bt = t->byte_token[(unsigned char)text[s->off + j]];
            if (bt >= 0) emit(out, bt);
        }
    }
    return 0;
}

static int bpe_fragment(const llmpi_tokenizer *t, work *w, const char *text, size_t len, sink *out) {
    int rc = -1;
    uint32_t *cpts = malloc(len * sizeof *cpts);
    uint8_t *flags = malloc(len);
    tok_lens words = { 0 };
    if (!cpts || !flags) goto done;
    size_t n = tok_utf8_to_cpts(text, len, cpts);
    for (size_t i = 0; i < n; i++) flags[i] = tok_cpt_flags(cpts[i]);
    if (tok_pretokenize(t->pre, cpts, flags, n, &words) < 0) goto done;
    size_t start = 0;
    for (size_t wi = 0; wi < words.n; wi++) {
        const size_t wn = words.v[wi];
        /* each codepoint re-encoded to UTF-8 (<= 4 bytes), each byte mapped to a 1-2 byte character */
        if (ensure_buf(w, wn * 8) < 0) goto done;
        size_t k = 0;
        for (size_t i = start; i < start + wn; i++) {
            char u[4];
            int ul = tok_utf8_encode(cpts[i], u);
            for (int j = 0; j < ul; j++) k += (size_t)tok_utf8_encode(tok_byte_to_cp((unsigned char)u[j]), w->buf + k);
        }
        start += wn;
        if (bpe_word(t, w, w->buf, k, out) < 0) goto done;
    }
    rc = 0;
done:
    free(cpts);
    free(flags);
    free(words.v);
    return rc;
}

int tokenizer_encode(const llmpi_tokenizer *t, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t *tokens, int max_tokens) {
    if (!t || (!text && len) || (max_tokens > 0 && !tokens)) return -1;
    if (len > (size_t)INT32_MAX / 4) return -1;
    sink out = { tokens, max_tokens > 0 ? max_tokens : 0, 0 };
    frag_list frags = { 0 };
    work w = { 0 };
    int rc = -1;
    if (partition_special(t, text, len, parse_special, &frags) < 0) goto done;
    if (add_special && t->add_bos) emit(&out, t->bos);
    bool prev_special = true;   /* SPM: a text fragment at the start or after a special token gets the prefix */
    for (size_t i = 0; i < frags.n; i++) {
        const fragment *fr = &frags.v[i];
        if (fr->token >= 0) {
            emit(&out, fr->token);
            prev_special = true;
            continue;
        }
        if (t->kind == VOCAB_SPM) {
            if (spm_fragment(t, &w, text + fr->off, fr->len, t->add_space_prefix && prev_special, &out) < 0) goto done;
        } else {
            if (bpe_fragment(t, &w, text + fr->off, fr->len, &out) < 0) goto done;
        }
        prev_special = false;
    }
    if (add_special && t->add_eos) emit(&out, t->eos);
    rc = out.n > INT_MAX ? -1 : (int)out.n;
done:
    free(frags.v);
    free(w.sym);
    free(w.heap.v);
    free(w.buf);
    return rc;
}

/* ---- detokenization ----------------------------------------------------------------------------- */

/* llama.cpp's clean_up_tokenization_spaces passes, in place; returns the new length. */
static size_t clean_spaces(char *text, size_t total) {
    /* 1: " ?", " !", " .", " ," lose the space */
    size_t n1 = total, k = total ? 1 : 0;
    for (size_t i = 1; i < n1; i++) {
        const char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) k--;
        text[k++] = x;
    }
    /* 2: a lone apostrophe " ' " loses both spaces */
    size_t n2 = k;
    k = n2 ? 1 : 0;
    for (size_t i = 1; i < n2; i++) {
        const char x = text[i];
        if (x == '\'' && i + 1 < n2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            k--;
            text[++i] = '\0';
        }
        text[k++] = x;
    }
    /* 3: " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it) */
    size_t n3 = k;
    k = n3 ? 1 : 0;
    for (size_t i = 1; i < n3; i++) {
        const char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
            const char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm') {
                k--;
            } else if (x1 != 't' && x1 != 'd' && i + 2 < n3) {
                const char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) k--;
            }
        }
        text[k++] = x;
    }
    return k;
}

int tokenizer_decode(const llmpi_tokenizer *t, const int32_t *ids, int n, char *out, int outlen,
                     bool remove_special, bool render_special) {
    if (!t || n < 0 || (n > 0 && !ids) || (outlen > 0 && !out)) return -1;
    if (outlen < 0) outlen = 0;
    for (int i = 0; i < n; i++)
        if (!valid_id(t, ids[i])) return -1;
    bool remove_space = t->add_space_prefix;
    if (remove_special && t->add_bos && n > 0 && ids[0] == t->bos) {
        remove_space = false;
        ids++;
        n--;
    }
    if (remove_special && t->add_eos && n > 0 && ids[n - 1] == t->eos) n--;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = piece_of(t, ids[i], render_special, &len);
        if (remove_space && len > 0 && p[0] == ' ') { p++; len--; }
        remove_space = false;
        if (total + len <= (size_t)outlen && len) memcpy(out + total, p, len);
        total += len;
    }
    if (total > (size_t)outlen) return total > INT_MAX ? INT_MAX : (int)total;
    if (t->clean_spaces) total = clean_spaces(out, total);
    if (total < (size_t)outlen) out[total] = '\0';
    return (int)total;
}

/* ---- streaming ---------------------------------------------------------------------------------- */

void tokenizer_stream_init(tokenizer_stream *s) {
    if (!s) return;
    memset(s, 0, sizeof *s);
}

/* Byte i of the virtual sequence pending ++ piece. */
static unsigned char seq_byte(const tokenizer_stream *s, const char *piece, size_t i) {
    return (unsigned char)(i < (size_t)s->n_pending ? s->pending[i] : piece[i - (size_t)s->n_pending]);
}

/* Examines the UTF-8 sequence at i (of n bytes). Returns its length if complete and valid; 0 if it is a
 * valid but incomplete prefix running to the end; otherwise -(length of the maximal invalid subpart). */
static int utf8_check(const tokenizer_stream *s, const char *piece, size_t i, size_t n) {
    const unsigned char b0 = seq_byte(s, piece, i);
    if (b0 < 0x80) return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
    if (b0 >= 0xC2 && b0 <= 0xDF) need = 1;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return -1;
    }
    for (int k = 1; k <= need; k++) {
        if (i + (size_t)k >= n) return 0;
        const unsigned char b = seq_byte(s, piece, i + (size_t)k);
        const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) return -k;
    }
    return need + 1;
}

/* Emits the complete characters of pending ++ piece into out (invalid parts as U+FFFD) and the incomplete
 * tail into *tail. Returns the output length (counted even when it does not fit; written only if it does). */
static size_t stream_process(const tokenizer_stream *s, const char *piece, size_t plen, bool flush, char *out,
                             size_t outlen, char tail[8], int *n_tail) {
    const size_t n = (size_t)s->n_pending + plen;
    size_t i = 0, k = 0;
    *n_tail = 0;
    while (i < n) {
        int c = utf8_check(s, piece, i, n);
        if (c > 0) {
            for (int j = 0; j < c; j++, k++)
                if (k < outlen) out[k] = (char)seq_byte(s, piece, i + (size_t)j);
            i += (size_t)c;
            continue;
        }
        if (c == 0 && !flush) {   /* incomplete tail: hold back (at most 3 bytes) */
            while (i < n) tail[(*n_tail)++] = (char)seq_byte(s, piece, i++);
            break;
        }
        static const char repl[3] = { (char)0xEF, (char)0xBF, (char)0xBD };
        for (int j = 0; j < 3; j++, k++)
            if (k < outlen) out[k] = repl[j];
        i += c == 0 ? n - i : (size_t)-c;
    }
    return k;
}

int tokenizer_stream_feed(const llmpi_tokenizer *t, tokenizer_stream *s, int32_t id, char *out, int outlen) {
    if (!s || !valid_id(t, id) || (outlen > 0 && !out)) return -1;
    if (s->n_pending < 0 || s->n_pending > 3) s->n_pending = 0;
    size_t plen;
    const char *piece = piece_of(t, id, s->render_special, &plen);
    char tail[8];
    int n_tail;
    size_t cap = outlen > 0 ? (size_t)outlen : 0;
    size_t need = stream_process(s, piece, plen, false, out, cap, tail, &n_tail);
    if (need > cap) return need > (size_t)INT_MAX ? INT_MIN : -(int)(need < 2 ? 2 : need);
    memcpy(s->pending, tail, (size_t)n_tail);
    s->n_pending = n_tail;
    return (int)need;
}

int tokenizer_stream_flush(tokenizer_stream *s, char *out, int outlen) {
    if (!s || (outlen > 0 && !out)) return -1;
    if (s->n_pending < 0 || s->n_pending > 3) s->n_pending = 0;
    char tail[8];
    int n_tail;
    size_t cap = outlen > 0 ? (size_t)outlen : 0;
    size_t need = stream_process(s, "", 0, true, out, cap, tail, &n_tail);
    if (need > cap) return -(int)(need < 2 ? 2 : need);
    s->n_pending = 0;
    return (int)need;
}
