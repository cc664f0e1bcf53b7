/* gguf_print_info: a gguf-dump-like listing of a parsed file (used by `llmpi-run --info`).
 *
 * Output shape (the first lines carry the counts so scripts and tests can grep them):
 *   GGUF version: 3
 *   file size: 1185376 bytes
 *   tensors: 48
 *   kv: 25
 *   alignment: 32
 *   data offset: 17024
 *   key/value pairs:
 *     [  0] general.architecture = "llama"  (STRING)
 *     [  1] tokenizer.ggml.tokens = ["<unk>", "<s>", ...]  (ARRAY of 512 STRING)
 *   tensors:
 *     idx  name  type  shape  bytes  offset
 *   total: 48 tensors, 1166592 bytes, 291648 parameters
 * Strings are shown as valid UTF-8 with control bytes and invalid sequences escaped (\n, \xHH),
 * truncated after STR_SHOWN bytes; arrays show their first ARR_SHOWN elements. */
#include "gguf.h"
#include "quant.h"

#include <inttypes.h>
#include <string.h>

#define STR_SHOWN 96
#define ARR_SHOWN 8

/* Length of the valid UTF-8 sequence starting at s[0] (n bytes available), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, uint64_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

/* Prints s escaped, at most `shown` bytes of it, between double quotes if `quoted`. */
static void print_str(FILE *out, gguf_str s, uint64_t shown, bool quoted) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    uint64_t limit = s.len < shown ? s.len : shown;
    if (quoted) fputc('"', out);
    uint64_t i = 0;
    while (i < limit) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') { fputc('\\', out); fputc(c, out); i++; }
        else if (c == '\n') { fputs("\\n", out); i++; }
        else if (c == '\t') { fputs("\\t", out); i++; }
        else if (c == '\r') { fputs("\\r", out); i++; }
        else if (c >= 0x20 && c < 0x7f) { fputc(c, out); i++; }
        else {
            size_t n = c >= 0x80 ? utf8_seq_len(p + i, s.len - i) : 0;
            if (n && i + n <= limit) { fwrite(p + i, 1, n, out); i += n; }
            else if (n) break; /* a multi-byte character straddles the cut: stop before it */
            else { fprintf(out, "\\x%02x", c); i++; }
        }
    }
    if (quoted) fputc('"', out);
    if (i < s.len) fprintf(out, "...(%" PRIu64 " bytes)", s.len);
}

/* One element of a fixed-size array, or a scalar value, from its little-endian bytes. */
static void print_scalar_bytes(FILE *out, gguf_value_type t, const uint8_t *b) {
    switch (t) {
    case GGUF_TYPE_UINT8:  { uint8_t v;  memcpy(&v, b, 1); fprintf(out, "%u", (unsigned)v); break; }
    case GGUF_TYPE_INT8:   { int8_t v;   memcpy(&v, b, 1); fprintf(out, "%d", (int)v); break; }
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, b, 2); fprintf(out, "%u", (unsigned)v); break; }
    case GGUF_TYPE_INT16:  { int16_t v;  memcpy(&v, b, 2); fprintf(out, "%d", (int)v); break; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, b, 4); fprintf(out, "%" PRIu32, v); break; }
    case GGUF_TYPE_INT32:  { int32_t v;  memcpy(&v, b, 4); fprintf(out, "%" PRId32, v); break; }
    case GGUF_TYPE_UINT64: { uint64_t v; memcpy(&v, b, 8); fprintf(out, "%" PRIu64, v); break; }
    case GGUF_TYPE_INT64:  { int64_t v;  memcpy(&v, b, 8); fprintf(out, "%" PRId64, v); break; }
    case GGUF_TYPE_FLOAT32:{ float v;    memcpy(&v, b, 4); fprintf(out, "%.9g", (double)v); break; }
    case GGUF_TYPE_FLOAT64:{ double v;   memcpy(&v, b, 8); fprintf(out, "%.17g", v); break; }
    case GGUF_TYPE_BOOL:   fputs(b[0] ? "true" : "false", out); break;
    default: fputs("?", out); break;
    }
}

static void print_array(FILE *out, const gguf_value *v) {
    uint64_t n = v->arr.n, shown = n < ARR_SHOWN ? n : ARR_SHOWN;
    size_t size = gguf_type_size(v->arr.elem_type);
    fputc('[', out);
    for (uint64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", out);
        if (v->arr.elem_type == GGUF_TYPE_STRING) print_str(out, v->arr.strs[i], 32, true);
        else if (v->arr.elem_type == GGUF_TYPE_ARRAY) print_array(out, &v->arr.items[i]);
        else print_scalar_bytes(out, v->arr.elem_type, v->arr.raw + i * size);
    }
    if (shown < n) fputs(", ...", out);
    fputc(']', out);
}

static void print_value(FILE *out, const gguf_value *v) {
    switch (v->type) {
    case GGUF_TYPE_STRING: print_str(out, v->str, STR_SHOWN, true); break;
    case GGUF_TYPE_ARRAY:  print_array(out, v); break;
    case GGUF_TYPE_BOOL:   fputs(v->b ? "true" : "false", out); break;
    default: {
        uint8_t b[8];
        memcpy(b, &v->u64, sizeof b);
        print_scalar_bytes(out, v->type, b);
        break;
    }
    }
}

/* "ARRAY of 512 STRING", "ARRAY of 2 ARRAY", or the scalar type name. */
static void print_type(FILE *out, const gguf_value *v) {
    if (v->type == GGUF_TYPE_ARRAY)
        fprintf(out, "ARRAY of %" PRIu64 " %s", v->arr.n, gguf_type_name(v->arr.elem_type));
    else
        fputs(gguf_type_name(v->type), out);
}

void gguf_print_info(const gguf_file *f, FILE *out) {
    if (!f || !out) return;
    fprintf(out, "GGUF version: %" PRIu32 "\n", f->version);
    fprintf(out, "file size: %zu bytes\n", f->len);
    fprintf(out, "tensors: %" PRIu64 "\n", f->n_tensors);
    fprintf(out, "kv: %" PRIu64 "\n", f->n_kv);
    fprintf(out, "alignment: %" PRIu32 "\n", f->alignment);
    fprintf(out, "data offset: %" PRIu64 "\n", f->data_offset);

    fprintf(out, "key/value pairs:\n");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        fprintf(out, "  [%3" PRIu64 "] ", i);
        print_str(out, kv->key, 128, false); /* keys unquoted, but escaped like any string */
        fputs(" = ", out);
        print_value(out, &kv->value);
        fputs("  (", out);
        print_type(out, &kv->value);
        fputs(")\n", out);
    }

    fprintf(out, "tensors:\n");
    fprintf(out, "  %5s  %-40s  %-6s  %-24s  %12s  %12s\n", "idx", "name", "type", "shape", "bytes", "offset");
    uint64_t total_bytes = 0;
    uint64_t total_params = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char shape[128];
        size_t o = 0;
        uint32_t dims = t->n_dims ? t->n_dims : 1;
        for (uint32_t d = 0; d < dims && o < sizeof shape; d++)
            o += (size_t)snprintf(shape + o, sizeof shape - o, d ? " x %" PRId64 : "%" PRId64, t->ne[d]);
        fprintf(out, "  %5" PRIu64 "  %-40s  %-6s  %-24s  %12" PRIu64 "  %12" PRIu64 "\n",
                i, t->name, quant_type_name(t->type), shape, t->nbytes, t->offset);
        total_bytes += t->nbytes;          /* tensors do not overlap and fit in the file: no wrap */
        total_params += (uint64_t)t->n_elements;
    }
    fprintf(out, "total: %" PRIu64 " tensors, %" PRIu64 " bytes, %" PRIu64 " parameters\n",
            f->n_tensors, total_bytes, total_params);
}
