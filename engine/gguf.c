/* GGUF v2/v3 parser, typed getters and the file opener (docs/formats.md §1, docs/gguf.md).
 *
 * The parser treats the buffer as hostile: every multi-byte field is read with memcpy (the buffer
 * may be unaligned), every length and count is compared with the bytes that remain *before*
 * anything is allocated from it, and every arithmetic step on file-controlled values is
 * overflow-checked. Failures produce one line: "at byte N: <what is wrong>" (tensor data errors
 * name the tensor instead, since they are found after all infos have been read). */
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_HEADER_BYTES 24u
/* Smallest possible records, used to bound counts before allocating (empty keys/names are
 * counted as possible here so that they get their own, more specific error later):
 * KV = key (u64 len) + u32 type + >= 1 value byte;
 * tensor info = name (u64 len) + u32 n_dims + (0 dims) + u32 type + u64 offset. */
#define GGUF_MIN_KV_BYTES     13u
#define GGUF_MIN_TENSOR_BYTES 24u
#define GGUF_MAX_STRING       (1ull << 30) /* llama.cpp's 1 GiB string cap */

static const uint8_t value_type_sizes[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = 1, [GGUF_TYPE_INT8] = 1, [GGUF_TYPE_UINT16] = 2, [GGUF_TYPE_INT16] = 2,
    [GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4, [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,
    [GGUF_TYPE_STRING] = 0, [GGUF_TYPE_ARRAY] = 0, [GGUF_TYPE_UINT64] = 8, [GGUF_TYPE_INT64] = 8,
    [GGUF_TYPE_FLOAT64] = 8,
};

static const char *const value_type_names[GGUF_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL",
    "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};

const char *gguf_type_name(gguf_value_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? value_type_names[t] : "INVALID";
}

size_t gguf_type_size(gguf_value_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? value_type_sizes[t] : 0;
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

/* ---- error reporting ------------------------------------------------------------------------ */

gguf_status gguf_set_error(gguf_error *err, gguf_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Copies a file string into out (NUL-terminated) for an error message: non-printable bytes
 * become \xHH and long strings are cut with "...", so a hostile key cannot break the one line. */
static const char *printable(char *out, size_t cap, gguf_str s) {
    size_t o = 0;
    const size_t limit = 64;
    for (uint64_t i = 0; i < s.len && o + 8 < cap; i++) {
        if (i == limit) { memcpy(out + o, "...", 3); o += 3; break; }
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = 0;
    return out;
}

/* ---- bounds-checked little-endian reader ---------------------------------------------------- */

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    gguf_error *err;
} reader;

static uint64_t remaining(const reader *r) { return (uint64_t)(r->len - r->pos); }

/* Reads n bytes into dst; on shortfall reports "<what> needs n bytes, only k remain". */
static bool read_bytes(reader *r, void *dst, size_t n, const char *what, ...)
    __attribute__((format(printf, 4, 5)));
static bool read_bytes(reader *r, void *dst, size_t n, const char *what, ...) {
    if (remaining(r) < n) {
        char label[160];
        va_list ap;
        va_start(ap, what);
        vsnprintf(label, sizeof label, what, ap);
        va_end(ap);
        gguf_set_error(r->err, GGUF_E_TRUNCATED, "at byte %zu: %s needs %zu bytes, only %" PRIu64 " remain (file truncated)",
                  r->pos, label, n, remaining(r));
        return false;
    }
    memcpy(dst, r->buf + r->pos, n);
    r->pos += n;
    return true;
}

/* Reads a GGUF string (u64 length + bytes). The label (printf-style) is only formatted on failure. */
static bool read_str(reader *r, gguf_str *s, const char *what, ...) __attribute__((format(printf, 3, 4)));
static bool read_str(reader *r, gguf_str *s, const char *what, ...) {
    size_t at = r->pos;
    uint64_t n = 0;
    char label[160];
    bool ok = remaining(r) >= 8;
    if (ok) {
        memcpy(&n, r->buf + r->pos, 8);
        ok = n <= remaining(r) - 8 && n <= GGUF_MAX_STRING;
    }
    if (!ok) {
        va_list ap;
        va_start(ap, what);
        vsnprintf(label, sizeof label, what, ap);
        va_end(ap);
        if (remaining(r) < 8)
            gguf_set_error(r->err, GGUF_E_TRUNCATED, "at byte %zu: %s length needs 8 bytes, only %" PRIu64 " remain (file truncated)",
                      at, label, remaining(r));
        else if (n > remaining(r) - 8)
            gguf_set_error(r->err, GGUF_E_TRUNCATED, "at byte %zu: %s length %" PRIu64 " exceeds remaining %" PRIu64 " bytes",
                      at, label, n, remaining(r) - 8);
        else
            gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: %s length %" PRIu64 " exceeds the 1 GiB string limit",
                      at, label, n);
        return false;
    }
    s->ptr = (const char *)r->buf + r->pos + 8;
    s->len = n;
    r->pos += 8 + (size_t)n;
    return true;
}

/* ---- values --------------------------------------------------------------------------------- */

static void free_value(gguf_value *v) {
    if (v->type != GGUF_TYPE_ARRAY) return;
    free(v->arr.strs);
    if (v->arr.items) {
        for (uint64_t i = 0; i < v->arr.n; i++) free_value(&v->arr.items[i]);
        free(v->arr.items);
    }
    v->arr.strs = NULL;
    v->arr.items = NULL;
}

/* Reads the body of an array value (element type, count, elements) into v.
 * depth: 1 for an array that is a KV's value, +1 per nesting level. key: for messages. */
static bool read_array(reader *r, gguf_value *v, int depth, const char *key) {
    size_t at = r->pos;
    uint32_t elem_type;
    uint64_t n;
    memset(&v->arr, 0, sizeof v->arr);
    if (!read_bytes(r, &elem_type, 4, "kv '%s' array element type", key)) return false;
    if (elem_type >= GGUF_TYPE_COUNT) {
        gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: kv '%s' has unknown array element type %" PRIu32, at, key, elem_type);
        return false;
    }
    if (elem_type == GGUF_TYPE_ARRAY && depth >= GGUF_MAX_ARRAY_DEPTH) {
        gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: kv '%s' has arrays nested deeper than %d levels",
                  at, key, GGUF_MAX_ARRAY_DEPTH);
        return false;
    }
    at = r->pos;
    if (!read_bytes(r, &n, 8, "kv '%s' array count", key)) return false;
    v->arr.elem_type = (gguf_value_type)elem_type;
    /* Minimum bytes per element: fixed size, or a string's / nested array's length fields. */
    uint64_t min_elem = value_type_sizes[elem_type];
    if (elem_type == GGUF_TYPE_STRING) min_elem = 8;
    if (elem_type == GGUF_TYPE_ARRAY) min_elem = 12;
    if (n > remaining(r) / min_elem) {
        gguf_set_error(r->err, GGUF_E_TRUNCATED,
                  "at byte %zu: kv '%s' array of %" PRIu64 " %s elements cannot fit in the remaining %" PRIu64 " bytes",
                  at, key, n, value_type_names[elem_type], remaining(r));
        return false;
    }
    v->arr.n = n;
    if (elem_type == GGUF_TYPE_STRING) {
        /* n <= remaining / 8, so this allocation is bounded by twice the file size. */
        v->arr.strs = malloc(n ? (size_t)n * sizeof *v->arr.strs : 1);
        if (!v->arr.strs) { gguf_set_error(r->err, GGUF_E_NOMEM, "at byte %zu: out of memory for %" PRIu64 " strings", at, n); return false; }
        for (uint64_t i = 0; i < n; i++)
            if (!read_str(r, &v->arr.strs[i], "kv '%s' element %" PRIu64, key, i)) return false;
    } else if (elem_type == GGUF_TYPE_ARRAY) {
        v->arr.items = calloc(n ? (size_t)n : 1, sizeof *v->arr.items);
        if (!v->arr.items) { gguf_set_error(r->err, GGUF_E_NOMEM, "at byte %zu: out of memory for %" PRIu64 " arrays", at, n); return false; }
        for (uint64_t i = 0; i < n; i++) {
            v->arr.items[i].type = GGUF_TYPE_ARRAY;
            if (!read_array(r, &v->arr.items[i], depth + 1, key)) {
                v->arr.n = i + 1; /* free only what was (partly) filled */
                return false;
            }
        }
    } else {
        v->arr.raw = r->buf + r->pos;
        r->pos += (size_t)(n * min_elem);
    }
    return true;
}

static bool read_value(reader *r, gguf_value *v, uint32_t type, const char *key) {
    v->type = (gguf_value_type)type;
    switch (type) {
    case GGUF_TYPE_STRING: return read_str(r, &v->str, "kv '%s' string", key);
    case GGUF_TYPE_ARRAY:  return read_array(r, v, 1, key);
    case GGUF_TYPE_BOOL: {
        uint8_t b;
        if (!read_bytes(r, &b, 1, "kv '%s' value", key)) return false;
        v->b = b != 0; /* the spec allows only 0/1; llama.cpp reads any non-zero as true, so do we */
        return true;
    }
    default:
        /* All other scalar members share the union's first bytes; little-endian host assumed
         * (as everywhere in LLMPi: GGUF, x86-64 and aarch64 are all little-endian). */
        return read_bytes(r, &v->u64, value_type_sizes[type], "kv '%s' value", key);
    }
}

/* ---- sorting helpers for duplicate / overlap checks ----------------------------------------- */

static int cmp_kv_key(const void *a, const void *b) {
    const gguf_kv *x = *(const gguf_kv *const *)a, *y = *(const gguf_kv *const *)b;
    uint64_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = n ? memcmp(x->key.ptr, y->key.ptr, (size_t)n) : 0;
    if (c) return c;
    if (x->key.len != y->key.len) return x->key.len < y->key.len ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_tensor_name(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x < y ? -1 : x > y;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* ---- parser --------------------------------------------------------------------------------- */

static gguf_status check_header(reader *r, gguf_file *f) {
    const size_t len = r->len;
    static const uint8_t magic[4] = { 'G', 'G', 'U', 'F' };
    if (len == 0) return gguf_set_error(r->err, GGUF_E_TRUNCATED, "at byte 0: file is empty (0 bytes)");
    if (memcmp(r->buf, magic, len < 4 ? len : 4) != 0) {
        char got[40];
        gguf_str s = { (const char *)r->buf, len < 4 ? len : 4 };
        return gguf_set_error(r->err, GGUF_E_MAGIC, "at byte 0: not a GGUF file (magic '%s', expected 'GGUF')",
                         printable(got, sizeof got, s));
    }
    if (len < GGUF_HEADER_BYTES)
        return gguf_set_error(r->err, GGUF_E_TRUNCATED, "at byte %zu: file is %zu bytes, shorter than the %u-byte GGUF header",
                         len, len, GGUF_HEADER_BYTES);
    r->pos = 4;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    memcpy(&version, r->buf + 4, 4);
    memcpy(&n_tensors, r->buf + 8, 8);
    memcpy(&n_kv, r->buf + 16, 8);
    r->pos = GGUF_HEADER_BYTES;
    if (version != 0 && (version & 0xFFFFu) == 0)
        return gguf_set_error(r->err, GGUF_E_VERSION, "at byte 4: version field 0x%08" PRIx32 " looks byte-swapped: "
                         "big-endian GGUF files are not supported", version);
    if (version == 0) return gguf_set_error(r->err, GGUF_E_VERSION, "at byte 4: version 0 is invalid");
    if (version == 1)
        return gguf_set_error(r->err, GGUF_E_VERSION, "at byte 4: version 1 (obsolete GGUFv1) is not supported; re-convert the model");
    if (version > 3)
        return gguf_set_error(r->err, GGUF_E_VERSION, "at byte 4: version %" PRIu32 " is not supported (this reader knows 2 and 3)", version);
    /* llama.cpp reads the counts as int64; counts with the top bit set are negative there. */
    if (n_tensors > remaining(r) / GGUF_MIN_TENSOR_BYTES)
        return gguf_set_error(r->err, GGUF_E_TRUNCATED, "at byte 8: tensor count %" PRIu64 " cannot fit in the remaining %" PRIu64
                         " bytes (each tensor info needs at least %u)", n_tensors, remaining(r), GGUF_MIN_TENSOR_BYTES);
    if (n_kv > remaining(r) / GGUF_MIN_KV_BYTES)
        return gguf_set_error(r->err, GGUF_E_TRUNCATED, "at byte 16: kv count %" PRIu64 " cannot fit in the remaining %" PRIu64
                         " bytes (each KV needs at least %u)", n_kv, remaining(r), GGUF_MIN_KV_BYTES);
    f->version = version;
    f->n_tensors = n_tensors;
    f->n_kv = n_kv;
    return GGUF_OK;
}

static gguf_status parse_kvs(reader *r, gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    /* n_kv <= len / 14 (checked), so this is at most a few times the file size. */
    f->kv = calloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof *f->kv);
    if (!f->kv) return gguf_set_error(r->err, GGUF_E_NOMEM, "at byte 16: out of memory for %" PRIu64 " KVs", f->n_kv);
    const uint64_t n_kv = f->n_kv;
    f->n_kv = 0; /* counts the KVs that hold allocations, so cleanup after a failure is exact */
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        kv->offset = r->pos;
        if (!read_str(r, &kv->key, "key %" PRIu64, i)) return r->err->code;
        if (kv->key.len == 0) return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %" PRIu64 ": key %" PRIu64 " is an empty key", kv->offset, i);
        char key[300];
        printable(key, sizeof key, kv->key);
        size_t at = r->pos;
        uint32_t type;
        if (!read_bytes(r, &type, 4, "kv '%s' value type", key)) return r->err->code;
        if (type >= GGUF_TYPE_COUNT)
            return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: kv '%s' has unknown value type %" PRIu32, at, key, type);
        f->n_kv = i + 1;
        at = r->pos;
        if (!read_value(r, &kv->value, type, key)) return r->err->code;
        if (gguf_str_eq(kv->key, "general.alignment")) {
            if (type != GGUF_TYPE_UINT32)
                return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: general.alignment has type %s, expected UINT32",
                                 at, value_type_names[type]);
            uint32_t a = kv->value.u32;
            if (a == 0 || (a & (a - 1)) != 0)
                return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: general.alignment %" PRIu32 " is not a non-zero power of two", at, a);
            f->alignment = a;
        }
    }
    /* Duplicate keys: sort pointers by key (then by position) and compare neighbours. */
    if (f->n_kv > 1) {
        const gguf_kv **order = malloc((size_t)f->n_kv * sizeof *order);
        if (!order) return gguf_set_error(r->err, GGUF_E_NOMEM, "out of memory checking %" PRIu64 " keys", f->n_kv);
        for (uint64_t i = 0; i < f->n_kv; i++) order[i] = &f->kv[i];
        qsort(order, (size_t)f->n_kv, sizeof *order, cmp_kv_key);
        for (uint64_t i = 1; i < f->n_kv; i++) {
            if (order[i]->key.len == order[i - 1]->key.len &&
                memcmp(order[i]->key.ptr, order[i - 1]->key.ptr, (size_t)order[i]->key.len) == 0) {
                char key[300];
                uint64_t first = order[i - 1]->offset, again = order[i]->offset;
                printable(key, sizeof key, order[i]->key);
                free(order);
                return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %" PRIu64 ": duplicate key '%s' (first defined at byte %" PRIu64 ")",
                                 again, key, first);
            }
        }
        free(order);
    }
    return GGUF_OK;
}

/* Reads one tensor-info record and checks everything that does not depend on the data section. */
static gguf_status parse_tensor_info(reader *r, const gguf_file *f, uint64_t index, gguf_tensor *t) {
    size_t at = r->pos;
    gguf_str name;
    if (!read_str(r, &name, "tensor %" PRIu64 " name", index)) return r->err->code;
    char pname[300];
    printable(pname, sizeof pname, name);
    if (name.len == 0) return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor %" PRIu64 " has an empty name", at, index);
    if (name.len >= GGUF_MAX_NAME)
        return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor %" PRIu64 " name length %" PRIu64 " exceeds the %d-byte limit ('%s')",
                         at, index, name.len, GGUF_MAX_NAME - 1, pname);
    if (memchr(name.ptr, 0, (size_t)name.len))
        return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor %" PRIu64 " name '%s' contains a NUL byte", at, index, pname);
    memcpy(t->name, name.ptr, (size_t)name.len);
    t->name[name.len] = 0;

    at = r->pos;
    if (!read_bytes(r, &t->n_dims, 4, "tensor '%s' n_dims", t->name)) return r->err->code;
    if (t->n_dims > GGUF_MAX_DIMS)
        return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor '%s' has n_dims %" PRIu32 " (at most %d)",
                         at, t->name, t->n_dims, GGUF_MAX_DIMS);
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        at = r->pos;
        if (!read_bytes(r, &t->ne[d], 8, "tensor '%s' ne[%" PRIu32 "]", t->name, d)) return r->err->code;
        if (t->ne[d] <= 0)
            return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor '%s' dimension %" PRIu32 " is %" PRId64
                             " (zero or negative dimensions are not supported)", at, t->name, d, t->ne[d]);
        if (n_elements > INT64_MAX / t->ne[d])
            return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor '%s' element count overflows int64 (ne[%" PRIu32 "] = %" PRId64 ")",
                             at, t->name, d, t->ne[d]);
        n_elements *= t->ne[d];
    }
    t->n_elements = n_elements;

    at = r->pos;
    if (!read_bytes(r, &t->type, 4, "tensor '%s' type", t->name)) return r->err->code;
    const quant_type_traits *tr = quant_traits(t->type);
    if (!tr) {
        if (t->type >= LLMPI_TYPE_COUNT)
            return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor '%s' has unknown tensor type %" PRIu32, at, t->name, t->type);
        return gguf_set_error(r->err, GGUF_E_UNSUPPORTED, "at byte %zu: tensor '%s': type %" PRIu32 " (%s) is not supported by this build",
                         at, t->name, t->type, quant_type_name(t->type));
    }
    if (tr->is_activation_only)
        return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor '%s': type %s is an activation-only format, not a stored tensor type",
                         at, t->name, tr->name);
    if (t->ne[0] % tr->blck_size != 0)
        return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor '%s': row length %" PRId64 " is not a multiple of the %s block size %" PRId64,
                         at, t->name, t->ne[0], tr->name, tr->blck_size);
    /* Bytes = blocks x block size, checked here as well as in quant_tensor_nbytes (n_elements fits
     * in int64, but e.g. 2^62 F32 elements are 2^64 bytes). */
    uint64_t blocks = (uint64_t)(n_elements / tr->blck_size);
    bool size_ok = blocks <= UINT64_MAX / tr->type_size;
    if (size_ok) size_ok = quant_tensor_nbytes(t->type, t->ne, &t->nbytes) && t->nbytes >= blocks * tr->type_size;
    if (!size_ok || t->nbytes > SIZE_MAX)
        return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor '%s': byte size of %" PRId64 " %s elements overflows",
                         at, t->name, n_elements, tr->name);

    at = r->pos;
    if (!read_bytes(r, &t->offset, 8, "tensor '%s' offset", t->name)) return r->err->code;
    if (t->offset % f->alignment != 0)
        return gguf_set_error(r->err, GGUF_E_INVALID, "at byte %zu: tensor '%s' offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                         at, t->name, t->offset, f->alignment);
    return GGUF_OK;
}

/* Placement: in bounds (overflow-checked), unique names, no two tensors sharing bytes. Gaps
 * between tensors are accepted (only the strict llama.cpp reader requires contiguity). */
static gguf_status check_placement(reader *r, gguf_file *f) {
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t avail = f->data_offset <= r->len ? r->len - f->data_offset : 0;
        if (f->data_offset > r->len || t->offset > avail || t->nbytes > avail - t->offset)
            return gguf_set_error(r->err, GGUF_E_TRUNCATED,
                             "tensor '%s': data [offset %" PRIu64 ", %" PRIu64 " bytes] extends past end of file (%zu bytes; data section starts at byte %" PRIu64 ")",
                             t->name, t->offset, t->nbytes, r->len, f->data_offset);
        t->data = r->buf + f->data_offset + t->offset;
    }
    if (f->n_tensors < 2) return GGUF_OK;
    const gguf_tensor **order = malloc((size_t)f->n_tensors * sizeof *order);
    if (!order) return gguf_set_error(r->err, GGUF_E_NOMEM, "out of memory checking %" PRIu64 " tensors", f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    gguf_status st = GGUF_OK;
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_tensor_name);
    for (uint64_t i = 1; i < f->n_tensors && st == GGUF_OK; i++)
        if (strcmp(order[i]->name, order[i - 1]->name) == 0)
            st = gguf_set_error(r->err, GGUF_E_INVALID, "duplicate tensor name '%s' (tensors %td and %td)",
                           order[i]->name, order[i - 1] - f->tensors, order[i] - f->tensors);
    if (st == GGUF_OK) {
        qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_tensor_offset);
        for (uint64_t i = 1; i < f->n_tensors && st == GGUF_OK; i++) {
            const gguf_tensor *a = order[i - 1], *b = order[i];
            if (b->offset - a->offset < a->nbytes) /* b->offset >= a->offset after sorting */
                st = gguf_set_error(r->err, GGUF_E_INVALID,
                               "tensors '%s' [offset %" PRIu64 ", %" PRIu64 " bytes] and '%s' [offset %" PRIu64 ", %" PRIu64 " bytes] overlap",
                               a->name, a->offset, a->nbytes, b->name, b->offset, b->nbytes);
        }
    }
    free(order);
    return st;
}

gguf_status gguf_parse(const void *buf, size_t len, gguf_file *out, gguf_error *err) {
    gguf_error local_err;
    if (!err) err = &local_err;
    err->code = GGUF_OK;
    err->msg[0] = 0;
    memset(out, 0, sizeof *out);
    if (!buf && len) return gguf_set_error(err, GGUF_E_IO, "no buffer");
    reader r = { .buf = buf, .len = len, .pos = 0, .err = err };
    gguf_file f;
    memset(&f, 0, sizeof f);
    f.buf = buf;
    f.len = len;
    gguf_status st = check_header(&r, &f);
    if (st == GGUF_OK) st = parse_kvs(&r, &f);
    if (st == GGUF_OK && f.n_tensors > remaining(&r) / GGUF_MIN_TENSOR_BYTES)
        st = gguf_set_error(err, GGUF_E_TRUNCATED, "at byte %zu: tensor count %" PRIu64 " cannot fit in the remaining %" PRIu64
                       " bytes after the KVs (each tensor info needs at least %u)", r.pos, f.n_tensors, remaining(&r), GGUF_MIN_TENSOR_BYTES);
    if (st == GGUF_OK) {
        /* n_tensors <= len / 25 (checked) */
        f.tensors = calloc(f.n_tensors ? (size_t)f.n_tensors : 1, sizeof *f.tensors);
        if (!f.tensors) st = gguf_set_error(err, GGUF_E_NOMEM, "out of memory for %" PRIu64 " tensor infos", f.n_tensors);
    }
    for (uint64_t i = 0; st == GGUF_OK && i < f.n_tensors; i++)
        st = parse_tensor_info(&r, &f, i, &f.tensors[i]);
    if (st == GGUF_OK) {
        /* r.pos <= len <= SIZE_MAX and alignment <= 2^31, so this cannot wrap in 64 bits
         * (and len < 2^63 on every platform we build for). */
        uint64_t end = r.pos;
        f.data_offset = end + (f.alignment - end % f.alignment) % f.alignment;
        st = check_placement(&r, &f);
    }
    if (st != GGUF_OK) {
        gguf_free(&f);
        return st;
    }
    *out = f;
    return GGUF_OK;
}

/* ---- file opening --------------------------------------------------------------------------- */

gguf_status gguf_open(const char *path, bool use_mmap, gguf_file *out, gguf_error *err) {
    gguf_error local_err;
    if (!err) err = &local_err;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gguf_set_error(err, GGUF_E_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return gguf_set_error(err, GGUF_E_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return gguf_set_error(err, GGUF_E_IO, "not a regular file");
    }
    if (sb.st_size == 0) {
        close(fd);
        return gguf_set_error(err, GGUF_E_TRUNCATED, "at byte 0: file is empty (0 bytes)");
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return gguf_set_error(err, GGUF_E_IO, "file is too large to map (%lld bytes)", (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size;
    void *map = NULL, *owned = NULL;
    const void *buf;
    if (use_mmap) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return gguf_set_error(err, GGUF_E_IO, "cannot mmap %zu bytes: %s", len, strerror(e));
        }
        /* Hints only; failure is harmless. */
        (void)madvise(map, len, MADV_WILLNEED);
        (void)madvise(map, len, MADV_SEQUENTIAL);
        buf = map;
    } else {
        owned = malloc(len);
        if (!owned) {
            close(fd);
            return gguf_set_error(err, GGUF_E_NOMEM, "out of memory reading %zu bytes", len);
        }
        size_t got = 0;
        while (got < len) {
            ssize_t n = read(fd, (char *)owned + got, len - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                int e = n < 0 ? errno : 0;
                free(owned);
                close(fd);
                if (e) return gguf_set_error(err, GGUF_E_IO, "read failed at byte %zu: %s", got, strerror(e));
                return gguf_set_error(err, GGUF_E_IO, "file shrank while reading (got %zu of %zu bytes)", got, len);
            }
            got += (size_t)n;
        }
        buf = owned;
    }
    close(fd);
    gguf_status st = gguf_parse(buf, len, out, err);
    if (st != GGUF_OK) {
        if (map) munmap(map, len);
        free(owned);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->map = map;
    out->map_len = map ? len : 0;
    out->owned = owned;
    return GGUF_OK;
}

void gguf_free(gguf_file *f) {
    if (!f) return;
    if (f->kv) {
        for (uint64_t i = 0; i < f->n_kv; i++) free_value(&f->kv[i].value);
        free(f->kv);
    }
    free(f->tensors);
    if (f->map) munmap(f->map, f->map_len);
    free(f->owned);
    memset(f, 0, sizeof *f);
}

void gguf_release_range(gguf_file *f, const void *p, size_t n) {
    const long page_l = sysconf(_SC_PAGESIZE);
    if (!f || !p || n == 0 || page_l <= 0) return;
    const uintptr_t page = (uintptr_t)page_l;
    const uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* ---- lookups and getters -------------------------------------------------------------------- */

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (gguf_str_eq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static gguf_status find_typed(const gguf_file *f, const char *key, gguf_value_type type, const gguf_value **v) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return GGUF_E_NOT_FOUND;
    if (kv->value.type != type) return GGUF_E_TYPE;
    *v = &kv->value;
    return GGUF_OK;
}

#define TYPED_GETTER(fn, ctype, gtype, member)                                   \
    gguf_status fn(const gguf_file *f, const char *key, ctype *out) {            \
        const gguf_value *v;                                                     \
        gguf_status st = find_typed(f, key, gtype, &v);                          \
        if (st == GGUF_OK) *out = v->member;                                     \
        return st;                                                               \
    }
TYPED_GETTER(gguf_get_u32, uint32_t, GGUF_TYPE_UINT32, u32)
TYPED_GETTER(gguf_get_i32, int32_t, GGUF_TYPE_INT32, i32)
TYPED_GETTER(gguf_get_u64, uint64_t, GGUF_TYPE_UINT64, u64)
TYPED_GETTER(gguf_get_f32, float, GGUF_TYPE_FLOAT32, f32)
TYPED_GETTER(gguf_get_bool, bool, GGUF_TYPE_BOOL, b)
TYPED_GETTER(gguf_get_str, gguf_str, GGUF_TYPE_STRING, str)
#undef TYPED_GETTER

/* Integer (or bool) stored in `bytes` with GGUF type t, as int64; false if not an integer type
 * or a UINT64 above INT64_MAX. */
static bool int_from_bytes(gguf_value_type t, const uint8_t *bytes, int64_t *out) {
    switch (t) {
    case GGUF_TYPE_UINT8:  { uint8_t v;  memcpy(&v, bytes, 1); *out = v; return true; }
    case GGUF_TYPE_INT8:   { int8_t v;   memcpy(&v, bytes, 1); *out = v; return true; }
    case GGUF_TYPE_BOOL:   { uint8_t v;  memcpy(&v, bytes, 1); *out = v != 0; return true; }
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, bytes, 2); *out = v; return true; }
    case GGUF_TYPE_INT16:  { int16_t v;  memcpy(&v, bytes, 2); *out = v; return true; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, bytes, 4); *out = v; return true; }
    case GGUF_TYPE_INT32:  { int32_t v;  memcpy(&v, bytes, 4); *out = v; return true; }
    case GGUF_TYPE_INT64:  { int64_t v;  memcpy(&v, bytes, 8); *out = v; return true; }
    case GGUF_TYPE_UINT64: {
        uint64_t v;
        memcpy(&v, bytes, 8);
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
        return true;
    }
    default: return false;
    }
}

static bool float_from_bytes(gguf_value_type t, const uint8_t *bytes, double *out) {
    if (t == GGUF_TYPE_FLOAT32) { float v; memcpy(&v, bytes, 4); *out = v; return true; }
    if (t == GGUF_TYPE_FLOAT64) { double v; memcpy(&v, bytes, 8); *out = v; return true; }
    if (t == GGUF_TYPE_UINT64) { uint64_t v; memcpy(&v, bytes, 8); *out = (double)v; return true; }
    int64_t i;
    if (!int_from_bytes(t, bytes, &i)) return false;
    *out = (double)i;
    return true;
}

gguf_status gguf_get_int(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return GGUF_E_NOT_FOUND;
    const gguf_value *v = &kv->value;
    uint8_t bytes[8];
    if (v->type == GGUF_TYPE_BOOL) bytes[0] = v->b;
    else memcpy(bytes, &v->u64, sizeof bytes); /* the scalar members overlay the union's start */
    int64_t x;
    if (!int_from_bytes(v->type, bytes, &x)) return GGUF_E_TYPE;
    *out = x;
    return GGUF_OK;
}

gguf_status gguf_get_float(const gguf_file *f, const char *key, double *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return GGUF_E_NOT_FOUND;
    if (kv->value.type == GGUF_TYPE_FLOAT32) { *out = kv->value.f32; return GGUF_OK; }
    if (kv->value.type == GGUF_TYPE_FLOAT64) { *out = kv->value.f64; return GGUF_OK; }
    return GGUF_E_TYPE;
}

gguf_status gguf_get_arr(const gguf_file *f, const char *key, const gguf_value **out) {
    return find_typed(f, key, GGUF_TYPE_ARRAY, out);
}

bool gguf_arr_int(const gguf_value *arr, uint64_t i, int64_t *out) {
    if (!arr || arr->type != GGUF_TYPE_ARRAY || i >= arr->arr.n || !arr->arr.raw) return false;
    size_t size = gguf_type_size(arr->arr.elem_type);
    if (size == 0) return false;
    return int_from_bytes(arr->arr.elem_type, arr->arr.raw + i * size, out);
}

bool gguf_arr_float(const gguf_value *arr, uint64_t i, double *out) {
    if (!arr || arr->type != GGUF_TYPE_ARRAY || i >= arr->arr.n || !arr->arr.raw) return false;
    size_t size = gguf_type_size(arr->arr.elem_type);
    if (size == 0) return false;
    return float_from_bytes(arr->arr.elem_type, arr->arr.raw + i * size, out);
}
