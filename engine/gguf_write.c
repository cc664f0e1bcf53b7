/* GGUF v3 writer (docs/formats.md §1.4, docs/gguf.md).
 *
 * Layout written (what gguf-py writes and llama.cpp's strict reader expects):
 *   header (magic, version 3, u64 tensor count, u64 KV count)
 *   KVs in the order they were first set
 *   tensor infos in declaration order, offsets contiguous: offset_i = sum_{j<i} align_up(nbytes_j)
 *   zero padding to ALIGNMENT, then each tensor's bytes followed by zero padding to ALIGNMENT
 *   (also after the last tensor).
 *
 * Each KV's value is serialised into its on-disk form (u32 type + value bytes) when it is set, so
 * writing is a plain copy and copy_kv handles nested arrays with the same code. Setters return
 * nothing: a bad argument or an allocation failure is remembered ("sticky") and reported by
 * gguf_writer_write_header. */
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *data;
    size_t len, cap;
    bool failed; /* allocation failed; contents are incomplete */
} byte_buf;

static void buf_append(byte_buf *b, const void *src, size_t n) {
    if (b->failed || n == 0) return;
    if (n > SIZE_MAX - b->len) { b->failed = true; return; }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) { cap = b->len + n; break; }
            cap *= 2;
        }
        uint8_t *p = realloc(b->data, cap);
        if (!p) { b->failed = true; return; }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void buf_u32(byte_buf *b, uint32_t v) { buf_append(b, &v, 4); } /* host is little-endian */
static void buf_u64(byte_buf *b, uint64_t v) { buf_append(b, &v, 8); }
static void buf_str(byte_buf *b, const char *s, uint64_t n) {
    buf_u64(b, n);
    if (n > SIZE_MAX) { b->failed = true; return; }
    buf_append(b, s, (size_t)n);
}

typedef struct {
    char *key;      /* key bytes (NUL-terminated for convenience; key_len is authoritative) */
    size_t key_len;
    byte_buf value; /* u32 value type + encoded value */
} writer_kv;

typedef struct {
    char name[GGUF_MAX_NAME];
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset; /* relative to the data section; computed by write_header */
} writer_tensor;

struct gguf_writer {
    writer_kv *kv;
    size_t n_kv, cap_kv;
    writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
    gguf_status sticky;            /* first setter error, reported by write_header */
    char sticky_msg[GGUF_ERR_MAX];
    bool header_written;
    size_t next_tensor;            /* index of the next tensor write_tensor_data expects */
    uint64_t pos;                  /* bytes written so far (relative to the start of the file) */
    uint32_t alignment;
};


static void sticky_error(gguf_writer *w, gguf_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sticky_error(gguf_writer *w, gguf_status code, const char *fmt, ...) {
    if (w->sticky != GGUF_OK) return; /* keep the first error: later ones are often consequences */
    w->sticky = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->sticky_msg, sizeof w->sticky_msg, fmt, ap);
    va_end(ap);
}

gguf_writer *gguf_writer_create(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].value.data);
    }
    free(w->kv);
    free(w->tensors);
    free(w);
}

/* Stores an encoded value under key (key_len bytes), replacing an earlier value of the same key
 * in place (so the key keeps its first position). Takes ownership of value->data. */
static void put_kv(gguf_writer *w, const char *key, size_t key_len, byte_buf *value) {
    if (value->failed) {
        free(value->data);
        sticky_error(w, GGUF_E_NOMEM, "out of memory encoding the value of a KV");
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        writer_kv *kv = &w->kv[i];
        if (kv->key_len == key_len && memcmp(kv->key, key, key_len) == 0) {
            free(kv->value.data);
            kv->value = *value;
            return;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        writer_kv *p = realloc(w->kv, cap * sizeof *p);
        if (!p) { free(value->data); sticky_error(w, GGUF_E_NOMEM, "out of memory adding a KV"); return; }
        w->kv = p;
        w->cap_kv = cap;
    }
    char *k = malloc(key_len + 1);
    if (!k) { free(value->data); sticky_error(w, GGUF_E_NOMEM, "out of memory adding a KV"); return; }
    memcpy(k, key, key_len);
    k[key_len] = 0;
    w->kv[w->n_kv++] = (writer_kv){ .key = k, .key_len = key_len, .value = *value };
}

/* Validates a C-string key; false (with a sticky error) if unusable. */
static bool key_ok(gguf_writer *w, const char *key, const char *fn) {
    if (!w) return false;
    if (!key || !key[0]) {
        sticky_error(w, GGUF_E_INVALID, "%s: empty or NULL key", fn);
        return false;
    }
    return true;
}

static void set_scalar(gguf_writer *w, const char *key, gguf_value_type type, const void *v, const char *fn) {
    if (!key_ok(w, key, fn)) return;
    byte_buf b = { 0 };
    buf_u32(&b, (uint32_t)type);
    buf_append(&b, v, gguf_type_size(type));
    put_kv(w, key, strlen(key), &b);
}

void gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v)   { set_scalar(w, key, GGUF_TYPE_UINT8, &v, __func__); }
void gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v)    { set_scalar(w, key, GGUF_TYPE_INT8, &v, __func__); }
void gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v) { set_scalar(w, key, GGUF_TYPE_UINT16, &v, __func__); }
void gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v)  { set_scalar(w, key, GGUF_TYPE_INT16, &v, __func__); }
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { set_scalar(w, key, GGUF_TYPE_UINT32, &v, __func__); }
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v)  { set_scalar(w, key, GGUF_TYPE_INT32, &v, __func__); }
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) { set_scalar(w, key, GGUF_TYPE_UINT64, &v, __func__); }
void gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v)  { set_scalar(w, key, GGUF_TYPE_INT64, &v, __func__); }
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v)    { set_scalar(w, key, GGUF_TYPE_FLOAT32, &v, __func__); }
void gguf_writer_set_f64(gguf_writer *w, const char *key, double v)   { set_scalar(w, key, GGUF_TYPE_FLOAT64, &v, __func__); }
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    set_scalar(w, key, GGUF_TYPE_BOOL, &b, __func__);
}

void gguf_writer_set_strn(gguf_writer *w, const char *key, const char *v, uint64_t len) {
    if (!key_ok(w, key, __func__)) return;
    if (!v && len) { sticky_error(w, GGUF_E_INVALID, "%s: '%s': NULL string", __func__, key); return; }
    byte_buf b = { 0 };
    buf_u32(&b, GGUF_TYPE_STRING);
    buf_str(&b, v, len);
    put_kv(w, key, strlen(key), &b);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    gguf_writer_set_strn(w, key, v, v ? strlen(v) : 0);
}

void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_value_type elem_type, const void *data, uint64_t n) {
    if (!key_ok(w, key, __func__)) return;
    size_t size = gguf_type_size(elem_type);
    if (size == 0) {
        sticky_error(w, GGUF_E_INVALID, "%s: '%s': element type %d is not a fixed-size type (use set_arr_str / copy_kv)",
                     __func__, key, (int)elem_type);
        return;
    }
    if (n && !data) { sticky_error(w, GGUF_E_INVALID, "%s: '%s': NULL data for %" PRIu64 " elements", __func__, key, n); return; }
    if (n > SIZE_MAX / size) { sticky_error(w, GGUF_E_NOMEM, "%s: '%s': %" PRIu64 " elements are too many", __func__, key, n); return; }
    byte_buf b = { 0 };
    buf_u32(&b, GGUF_TYPE_ARRAY);
    buf_u32(&b, (uint32_t)elem_type);
    buf_u64(&b, n);
    buf_append(&b, data, (size_t)n * size);
    put_kv(w, key, strlen(key), &b);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (!key_ok(w, key, __func__)) return;
    if (n && !strs) { sticky_error(w, GGUF_E_INVALID, "%s: '%s': NULL string list", __func__, key); return; }
    byte_buf b = { 0 };
    buf_u32(&b, GGUF_TYPE_ARRAY);
    buf_u32(&b, GGUF_TYPE_STRING);
    buf_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        const char *s = strs[i] ? strs[i] : "";
        buf_str(&b, s, strlen(s));
    }
    put_kv(w, key, strlen(key), &b);
}

/* Appends the encoding of an array body (element type, count, elements) of a parsed value. */
static void encode_array(byte_buf *b, const gguf_value *v) {
    buf_u32(b, (uint32_t)v->arr.elem_type);
    buf_u64(b, v->arr.n);
    if (v->arr.elem_type == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < v->arr.n; i++) buf_str(b, v->arr.strs[i].ptr, v->arr.strs[i].len);
    } else if (v->arr.elem_type == GGUF_TYPE_ARRAY) {
        for (uint64_t i = 0; i < v->arr.n; i++) encode_array(b, &v->arr.items[i]);
    } else {
        size_t size = gguf_type_size(v->arr.elem_type);
        if (size == 0 || (v->arr.n && !v->arr.raw) || v->arr.n > SIZE_MAX / size) { b->failed = true; return; }
        buf_append(b, v->arr.raw, (size_t)v->arr.n * size);
    }
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv) {
    if (!w) return;
    if (!kv || kv->key.len == 0 || kv->key.len > SIZE_MAX - 1) {
        sticky_error(w, GGUF_E_INVALID, "%s: empty or NULL key", __func__);
        return;
    }
    const gguf_value *v = &kv->value;
    if ((unsigned)v->type >= GGUF_TYPE_COUNT) {
        sticky_error(w, GGUF_E_INVALID, "%s: invalid value type %d", __func__, (int)v->type);
        return;
    }
    byte_buf b = { 0 };
    buf_u32(&b, (uint32_t)v->type);
    if (v->type == GGUF_TYPE_STRING) {
        buf_str(&b, v->str.ptr, v->str.len);
    } else if (v->type == GGUF_TYPE_ARRAY) {
        encode_array(&b, v);
    } else if (v->type == GGUF_TYPE_BOOL) {
        uint8_t x = v->b ? 1 : 0;
        buf_append(&b, &x, 1);
    } else {
        buf_append(&b, &v->u64, gguf_type_size(v->type)); /* scalar members overlay the union start */
    }
    put_kv(w, kv->key.ptr, (size_t)kv->key.len, &b);
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne) {
    if (!w) return -1;
    if (w->header_written) { sticky_error(w, GGUF_E_INVALID, "%s: header already written", __func__); return -1; }
    size_t name_len = name ? strlen(name) : 0;
    if (name_len == 0 || name_len >= GGUF_MAX_NAME || n_dims == 0 || n_dims > GGUF_MAX_DIMS || !ne) return -1;
    const quant_type_traits *tr = quant_traits(type);
    if (!tr || tr->is_activation_only) return -1;
    writer_tensor t = { .type = type, .n_dims = n_dims, .ne = { 1, 1, 1, 1 } };
    memcpy(t.name, name, name_len + 1);
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || n_elements > INT64_MAX / ne[d]) return -1;
        n_elements *= ne[d];
        t.ne[d] = ne[d];
    }
    if (!quant_tensor_nbytes(type, t.ne, &t.nbytes)) return -1;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return -1;
    if (w->n_tensors >= (size_t)INT32_MAX) return -1;
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        writer_tensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) { sticky_error(w, GGUF_E_NOMEM, "out of memory adding tensor '%s'", name); return -1; }
        w->tensors = p;
        w->cap_tensors = cap;
    }
    w->tensors[w->n_tensors] = t;
    return (int)w->n_tensors++;
}

uint64_t gguf_writer_tensor_nbytes(const gguf_writer *w, int i) {
    if (!w || i < 0 || (size_t)i >= w->n_tensors) return 0;
    return w->tensors[i].nbytes;
}

/* ---- output --------------------------------------------------------------------------------- */

static gguf_status write_bytes(gguf_writer *w, FILE *fp, const void *data, size_t n, gguf_error *err) {
    if (n && fwrite(data, 1, n, fp) != n) {
        int e = errno;
        gguf_status st = gguf_set_error(err, GGUF_E_IO, "write failed at byte %" PRIu64 ": %s", w->pos, e ? strerror(e) : "short write");
        sticky_error(w, GGUF_E_IO, "an earlier write failed at byte %" PRIu64, w->pos);
        return st;
    }
    w->pos += n;
    return GGUF_OK;
}

static gguf_status write_padding(gguf_writer *w, FILE *fp, gguf_error *err) {
    static const uint8_t zeros[256];
    uint64_t pad = (w->alignment - w->pos % w->alignment) % w->alignment;
    while (pad > 0) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        gguf_status st = write_bytes(w, fp, zeros, n, err);
        if (st != GGUF_OK) return st;
        pad -= n;
    }
    return GGUF_OK;
}

/* fwrite buffers: a full disk may only show up when the buffer is flushed. */
static gguf_status flush(gguf_writer *w, FILE *fp, gguf_error *err) {
    if (fflush(fp) != 0 || ferror(fp)) {
        int e = errno;
        sticky_error(w, GGUF_E_IO, "an earlier write failed");
        return gguf_set_error(err, GGUF_E_IO, "write failed (flush after byte %" PRIu64 "): %s", w->pos, e ? strerror(e) : "stream error");
    }
    return GGUF_OK;
}

gguf_status gguf_writer_write_header(gguf_writer *w, FILE *fp, gguf_error *err) {
    if (!w || !fp) return gguf_set_error(err, GGUF_E_IO, "gguf_writer_write_header: NULL writer or file");
    if (w->sticky != GGUF_OK) return gguf_set_error(err, w->sticky, "%s", w->sticky_msg);
    if (w->header_written) return gguf_set_error(err, GGUF_E_INVALID, "gguf_writer_write_header: header already written");

    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        const writer_kv *kv = &w->kv[i];
        if (strcmp(kv->key, "general.alignment") != 0 || kv->key_len != strlen("general.alignment")) continue;
        uint32_t type, a = 0;
        memcpy(&type, kv->value.data, 4);
        if (type == GGUF_TYPE_UINT32) memcpy(&a, kv->value.data + 4, 4);
        if (type != GGUF_TYPE_UINT32 || a == 0 || (a & (a - 1)) != 0)
            return gguf_set_error(err, GGUF_E_INVALID, "general.alignment must be a UINT32 non-zero power of two (have %s %" PRIu32 ")",
                             gguf_type_name((gguf_value_type)type), a);
        w->alignment = a;
    }

    /* Offsets: contiguous, each tensor padded to the alignment. */
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        writer_tensor *t = &w->tensors[i];
        t->offset = off;
        uint64_t padded = t->nbytes + (w->alignment - t->nbytes % w->alignment) % w->alignment;
        if (padded < t->nbytes || off > UINT64_MAX - padded)
            return gguf_set_error(err, GGUF_E_INVALID, "tensor '%s': data section size overflows", t->name);
        off += padded;
    }

    byte_buf b = { 0 };
    static const uint8_t magic[4] = { 'G', 'G', 'U', 'F' };
    buf_append(&b, magic, 4);
    buf_u32(&b, 3);
    buf_u64(&b, w->n_tensors);
    buf_u64(&b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        buf_str(&b, w->kv[i].key, w->kv[i].key_len);
        buf_append(&b, w->kv[i].value.data, w->kv[i].value.len);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        buf_str(&b, t->name, strlen(t->name));
        buf_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_u64(&b, (uint64_t)t->ne[d]);
        buf_u32(&b, t->type);
        buf_u64(&b, t->offset);
    }
    if (b.failed) {
        free(b.data);
        return gguf_set_error(err, GGUF_E_NOMEM, "out of memory building the GGUF header");
    }
    w->header_written = true;
    w->next_tensor = 0;
    w->pos = 0;
    gguf_status st = write_bytes(w, fp, b.data, b.len, err);
    free(b.data);
    if (st == GGUF_OK) st = write_padding(w, fp, err);
    if (st == GGUF_OK) st = flush(w, fp, err);
    return st;
}

gguf_status gguf_writer_write_tensor_data(gguf_writer *w, FILE *fp, int i, const void *data, uint64_t nbytes, gguf_error *err) {
    if (!w || !fp) return gguf_set_error(err, GGUF_E_IO, "gguf_writer_write_tensor_data: NULL writer or file");
    if (w->sticky != GGUF_OK) return gguf_set_error(err, w->sticky, "%s", w->sticky_msg);
    if (!w->header_written) return gguf_set_error(err, GGUF_E_INVALID, "gguf_writer_write_tensor_data: header not written yet");
    if (i < 0 || (size_t)i != w->next_tensor || (size_t)i >= w->n_tensors)
        return gguf_set_error(err, GGUF_E_INVALID, "gguf_writer_write_tensor_data: tensor %d written out of order (expected %zu of %zu)",
                         i, w->next_tensor, w->n_tensors);
    const writer_tensor *t = &w->tensors[i];
    if (nbytes != t->nbytes || (nbytes && !data))
        return gguf_set_error(err, GGUF_E_INVALID, "tensor '%s': got %" PRIu64 " bytes of data, its shape and type need %" PRIu64,
                         t->name, data ? nbytes : 0, t->nbytes);
    if (nbytes > SIZE_MAX) return gguf_set_error(err, GGUF_E_INVALID, "tensor '%s' is too large for this platform", t->name);
    gguf_status st = write_bytes(w, fp, data, (size_t)nbytes, err);
    if (st == GGUF_OK) st = write_padding(w, fp, err);
    if (st != GGUF_OK) return st;
    w->next_tensor++;
    if (w->next_tensor == w->n_tensors) return flush(w, fp, err);
    return GGUF_OK;
}

gguf_status gguf_writer_write_all(gguf_writer *w, FILE *fp, const void *const *tensor_data, gguf_error *err) {
    gguf_status st = gguf_writer_write_header(w, fp, err);
    for (size_t i = 0; st == GGUF_OK && i < w->n_tensors; i++) {
        if (!tensor_data) return gguf_set_error(err, GGUF_E_INVALID, "gguf_writer_write_all: NULL tensor data list");
        st = gguf_writer_write_tensor_data(w, fp, (int)i, tensor_data[i], w->tensors[i].nbytes, err);
    }
    return st;
}
