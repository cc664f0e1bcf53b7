/* GGUF v2/v3 reader and writer (docs/formats.md §1).
 *
 * Reading: gguf_parse() works on (buf, len) only, so the fuzzer and tests can drive it from
 * memory; gguf_open() mmaps a file read-only and hands the mapping to it. Tensor data is never
 * copied: each tensor's `data` points into the buffer. Every count, length, offset and alignment
 * is checked against the bytes that remain; failures return a gguf_status and a one-line message
 * naming the problem and the byte offset where it was found.
 *
 * Writing: gguf_writer streams KV pairs and tensor infos, then tensor data in the same order, with
 * ALIGNMENT padding, to a FILE* (or any sink); files it writes load in llama.cpp. */
#ifndef LLMPI_GGUF_H
#define LLMPI_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GGUF_MAGIC             0x46554747u /* "GGUF" read as little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS          4
#define GGUF_MAX_NAME          64          /* llama.cpp's limit: tensor names are < 64 bytes */
#define GGUF_MAX_ARRAY_DEPTH   4           /* nested arrays deeper than this are rejected */
#define GGUF_ERR_MAX           320

typedef enum {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12, GGUF_TYPE_COUNT = 13
} gguf_value_type;

typedef enum {
    GGUF_OK = 0,
    GGUF_E_IO,            /* cannot open/stat/map/read/write the file */
    GGUF_E_NOMEM,
    GGUF_E_MAGIC,         /* not a GGUF file */
    GGUF_E_VERSION,       /* unsupported version, or a big-endian file */
    GGUF_E_TRUNCATED,     /* a field, string, array or tensor extends past the end */
    GGUF_E_INVALID,       /* malformed value: bad type id, bad alignment, zero dim, duplicate... */
    GGUF_E_UNSUPPORTED,   /* well-formed but not supported (tensor type this build cannot use) */
    GGUF_E_NOT_FOUND,     /* getter: key absent */
    GGUF_E_TYPE,          /* getter: key present with another value type */
} gguf_status;

/* A string inside the buffer: not NUL-terminated. */
typedef struct { const char *ptr; uint64_t len; } gguf_str;

typedef struct gguf_value gguf_value;
struct gguf_value {
    gguf_value_type type;
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
        uint64_t u64; int64_t i64; float f32; double f64; bool b;
        gguf_str str;
        struct {
            gguf_value_type elem_type;
            uint64_t n;
            const uint8_t *raw;     /* fixed-size elements: n * size, little-endian, maybe unaligned */
            gguf_str *strs;         /* elem_type STRING: n strings (allocated index into the buffer) */
            gguf_value *items;      /* elem_type ARRAY: n nested arrays (allocated) */
        } arr;
    };
};

typedef struct {
    gguf_str   key;
    gguf_value value;
    uint64_t   offset;             /* byte offset of the record in the file */
} gguf_kv;

typedef struct {
    char     name[GGUF_MAX_NAME];  /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t  ne[GGUF_MAX_DIMS];    /* missing trailing dims are 1; ne[0] is the row length */
    uint32_t type;                 /* llmpi_type / ggml type id */
    uint64_t offset;               /* relative to the data section */
    uint64_t nbytes;               /* quant_tensor_nbytes() */
    int64_t  n_elements;
    const void *data;              /* points into the buffer */
} gguf_tensor;

typedef struct {
    const uint8_t *buf;            /* whole file (mapped or caller's memory) */
    size_t         len;
    uint32_t       version;
    uint64_t       n_kv;
    gguf_kv       *kv;
    uint64_t       n_tensors;
    gguf_tensor   *tensors;
    uint32_t       alignment;
    uint64_t       data_offset;    /* start of the tensor data section */
    /* set by gguf_open() only */
    void          *map;
    size_t         map_len;
    void          *owned;          /* malloc'd copy when opened without mmap */
} gguf_file;

typedef struct {
    gguf_status code;
    char msg[GGUF_ERR_MAX];        /* one line, names the problem and the byte offset */
} gguf_error;

/* Parse (buf, len). On success fills *out (free with gguf_free) and returns GGUF_OK.
 * The buffer must outlive *out. On failure *out is zeroed (nothing to free) and err says why;
 * err may be NULL. Validation policy (what is rejected with which status): docs/gguf.md. */
gguf_status gguf_parse(const void *buf, size_t len, gguf_file *out, gguf_error *err);

/* Open and parse a file. use_mmap: map read-only (MADV_WILLNEED/SEQUENTIAL hints); otherwise read
 * it into memory. The error message does not include the path (callers prefix it). */
gguf_status gguf_open(const char *path, bool use_mmap, gguf_file *out, gguf_error *err);
void gguf_free(gguf_file *f);
/* The caller will never read [p, p + n) again (a tensor the model converted to another layout at load):
 * give the whole pages inside it back to the OS (madvise DONTNEED; a mapped file's pages drop out of RSS,
 * read-in memory reads back as zeros). Best effort; p must lie inside the file's data. */
void gguf_release_range(gguf_file *f, const void *p, size_t n);

/* Lookups. find returns NULL when absent. */
const gguf_kv     *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters: GGUF_E_NOT_FOUND if absent, GGUF_E_TYPE if the stored type differs, never garbage.
 * get_int accepts any integer type (and bool) whose value fits in int64. get_float accepts f32/f64. */
gguf_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
gguf_status gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
gguf_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
gguf_status gguf_get_f32(const gguf_file *f, const char *key, float *out);
gguf_status gguf_get_bool(const gguf_file *f, const char *key, bool *out);
gguf_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
gguf_status gguf_get_int(const gguf_file *f, const char *key, int64_t *out);
gguf_status gguf_get_float(const gguf_file *f, const char *key, double *out);
/* Array getter: any element type; *out points into the file's parsed KV. */
gguf_status gguf_get_arr(const gguf_file *f, const char *key, const gguf_value **out);
/* Element i of a fixed-size numeric array as int64 / double (false if not numeric or out of range). */
bool gguf_arr_int(const gguf_value *arr, uint64_t i, int64_t *out);
bool gguf_arr_float(const gguf_value *arr, uint64_t i, double *out);

/* Fills err (may be NULL) with code and a printf-style one-line message; returns code. Shared by the
 * reader and the writer. */
gguf_status gguf_set_error(gguf_error *err, gguf_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

const char *gguf_type_name(gguf_value_type t);
size_t gguf_type_size(gguf_value_type t); /* 0 for STRING/ARRAY/invalid */
/* Compares a gguf_str with a C string. */
bool gguf_str_eq(gguf_str s, const char *c);

/* Prints a human-readable dump (header, every KV with long arrays elided, tensor table with
 * name/type/shape/bytes) like gguf-dump. Used by `llmpi-run --info`. */
void gguf_print_info(const gguf_file *f, FILE *out);

/* ---------------------------------------------------------------------------------------------
 * Writer. Usage:
 *   gguf_writer *w = gguf_writer_create();
 *   gguf_writer_set_u32(w, "general.alignment", 32); ... set_str, set_arr_str, ...
 *   gguf_writer_add_tensor(w, "tok_embd.weight", LLMPI_TYPE_F32, 2, ne);   // infos, in order
 *   gguf_writer_write_header(w, fp, &err);            // header + KVs + tensor infos + padding
 *   gguf_writer_write_tensor_data(w, fp, i, data, nbytes, &err);  // each tensor in order (streamed)
 *   gguf_writer_free(w);
 * Setting a key twice replaces the earlier value. Tensor offsets are computed from the declared
 * shapes (quant_tensor_nbytes), so data can be produced one tensor at a time. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_create(void);
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v);
void gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v);
void gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v);
void gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v);
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_f64(gguf_writer *w, const char *key, double v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_set_strn(gguf_writer *w, const char *key, const char *v, uint64_t len);
/* Fixed-size element array: n elements of elem_type, copied from data (host = little-endian). */
void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_value_type elem_type, const void *data, uint64_t n);
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copies a KV (any type, including nested arrays) from a parsed file. */
void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);
/* Declares the next tensor; returns its index or -1 (bad name/shape/type). */
int  gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne);
uint64_t gguf_writer_tensor_nbytes(const gguf_writer *w, int i);
gguf_status gguf_writer_write_header(gguf_writer *w, FILE *fp, gguf_error *err);
/* Writes tensor i's bytes (must be called for i = 0, 1, ... in order) followed by alignment padding. */
gguf_status gguf_writer_write_tensor_data(gguf_writer *w, FILE *fp, int i, const void *data, uint64_t nbytes, gguf_error *err);
/* Convenience: header + all tensors from an array of data pointers. */
gguf_status gguf_writer_write_all(gguf_writer *w, FILE *fp, const void *const *tensor_data, gguf_error *err);

#endif
