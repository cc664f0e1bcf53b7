/* Importance matrices: collector (sum of squared matmul inputs per weight column), llama.cpp's
 * imatrix GGUF writer, and a reader for that format and the legacy .dat format. See imatrix.h. */
#include "imatrix.h"
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMATRIX_SUM2_SUFFIX   ".in_sum2"
#define IMATRIX_COUNTS_SUFFIX ".counts"

static void set_msg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_msg(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *dup_str(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

static bool has_suffix(const char *s, size_t len, const char *suffix) {
    const size_t n = strlen(suffix);
    return len > n && memcmp(s + len - n, suffix, n) == 0;
}

/* ==== collector ================================================================================ */

typedef struct {
    char    *name;
    int64_t  n_in;
    double  *sum2;    /* n_in: sum of x[j]^2 over every row added */
    int64_t  count;   /* rows added */
} collector_entry;

struct imatrix_collector {
    int      chunk_size;
    bool     process_output;
    collector_entry *entries;
    size_t   n_entries, cap_entries;
    size_t  *slots;           /* open-addressing hash table: entry index + 1, 0 = empty */
    size_t   n_slots;         /* power of two, kept at least twice n_entries */
    char   **datasets;
    size_t   n_datasets;
    bool     failed;
    char     error[IMATRIX_ERR_MAX];
};

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;           /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void collector_fail(imatrix_collector *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void collector_fail(imatrix_collector *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
}

imatrix_collector *imatrix_collector_create(int chunk_size, bool process_output) {
    if (chunk_size < 1) return NULL;
    imatrix_collector *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->chunk_size = chunk_size;
    c->process_output = process_output;
    c->n_slots = 64;
    c->slots = calloc(c->n_slots, sizeof *c->slots);
    if (!c->slots) { free(c); return NULL; }
    return c;
}

void imatrix_collector_free(imatrix_collector *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_entries; i++) {
        free(c->entries[i].name);
        free(c->entries[i].sum2);
    }
    for (size_t i = 0; i < c->n_datasets; i++) free(c->datasets[i]);
    free(c->datasets);
    free(c->entries);
    free(c->slots);
    free(c);
}

bool imatrix_collector_wants(const imatrix_collector *c, const char *weight_name) {
    if (!c || !weight_name) return false;
    return strncmp(weight_name, "blk.", 4) == 0 || (c->process_output && strcmp(weight_name, "output.weight") == 0);
}

/* Slot of name in the table: its entry, or the empty slot where it would go. */
static size_t find_slot(const imatrix_collector *c, const char *name) {
    size_t i = (size_t)hash_name(name) & (c->n_slots - 1);
    while (c->slots[i] && strcmp(c->entries[c->slots[i] - 1].name, name) != 0) i = (i + 1) & (c->n_slots - 1);
    return i;
}

static collector_entry *find_entry(const imatrix_collector *c, const char *name) {
    const size_t s = find_slot(c, name);
    return c->slots[s] ? &c->entries[c->slots[s] - 1] : NULL;
}

static bool grow_table(imatrix_collector *c) {
    const size_t n = c->n_slots * 2;
    size_t *slots = calloc(n, sizeof *slots);
    if (!slots) return false;
    free(c->slots);
    c->slots = slots;
    c->n_slots = n;
    for (size_t e = 0; e < c->n_entries; e++) c->slots[find_slot(c, c->entries[e].name)] = e + 1;
    return true;
}

static collector_entry *new_entry(imatrix_collector *c, const char *name, int64_t n_in) {
    if ((c->n_entries + 1) * 2 > c->n_slots && !grow_table(c)) return NULL;
    if (c->n_entries == c->cap_entries) {
        const size_t cap = c->cap_entries ? 2 * c->cap_entries : 64;
        collector_entry *p = realloc(c->entries, cap * sizeof *p);
        if (!p) return NULL;
        c->entries = p;
        c->cap_entries = cap;
    }
    if ((uint64_t)n_in > SIZE_MAX / sizeof(double)) return NULL;
    collector_entry e = { dup_str(name, strlen(name)), n_in, calloc((size_t)n_in, sizeof(double)), 0 };
    if (!e.name || !e.sum2) { free(e.name); free(e.sum2); return NULL; }
    c->entries[c->n_entries] = e;
    c->slots[find_slot(c, name)] = c->n_entries + 1;
    return &c->entries[c->n_entries++];
}

bool imatrix_collector_add(imatrix_collector *c, const char *weight_name, const float *x, int n_rows, int64_t n_in) {
    if (!c) return false;
    if (c->failed) return false;
    if (!imatrix_collector_wants(c, weight_name) || n_rows <= 0) return true;
    if (n_in <= 0 || !x) {
        collector_fail(c, "imatrix: bad input for %s (%" PRId64 " columns)", weight_name, n_in);
        return false;
    }
    collector_entry *e = find_entry(c, weight_name);
    if (!e && !(e = new_entry(c, weight_name, n_in))) {
        collector_fail(c, "imatrix: out of memory adding %s (%" PRId64 " columns)", weight_name, n_in);
        return false;
    }
    if (e->n_in != n_in) {
        collector_fail(c, "imatrix: inconsistent size for %s: %" PRId64 " columns, earlier %" PRId64, weight_name, n_in,
                       e->n_in);
        return false;
    }
    for (int r = 0; r < n_rows; r++) {
        const float *row = x + (size_t)r * (size_t)n_in;
        for (int64_t j = 0; j < n_in; j++) e->sum2[j] += (double)row[j] * (double)row[j];
    }
    e->count += n_rows;
    /* llama-imatrix stops on non-finite sums too: such an imatrix would poison the quantizer. */
    for (int64_t j = 0; j < n_in; j++)
        if (!isfinite(e->sum2[j])) {
            collector_fail(c, "imatrix: non-finite activations entering %s (column %" PRId64 ")", weight_name, j);
            return false;
        }
    return true;
}

void imatrix_collector_observe(const char *weight_name, const float *x, int n_tokens, int64_t n_in, void *user) {
    imatrix_collector_add(user, weight_name, x, n_tokens, n_in);
}

const char *imatrix_collector_error(const imatrix_collector *c) {
    if (!c) return "imatrix: no collector";
    return c->failed ? c->error : NULL;
}

bool imatrix_collector_add_dataset(imatrix_collector *c, const char *name) {
    if (!c || !name) return false;
    char **p = realloc(c->datasets, (c->n_datasets + 1) * sizeof *p);
    if (!p) return false;
    c->datasets = p;
    if (!(c->datasets[c->n_datasets] = dup_str(name, strlen(name)))) return false;
    c->n_datasets++;
    return true;
}

size_t imatrix_collector_n_entries(const imatrix_collector *c) { return c ? c->n_entries : 0; }

int32_t imatrix_collector_chunk_count(const imatrix_collector *c) {
    if (!c) return 0;
    int64_t max_count = 0;
    for (size_t i = 0; i < c->n_entries; i++)
        if (c->entries[i].count > max_count) max_count = c->entries[i].count;
    const int64_t chunks = max_count / c->chunk_size;
    return chunks > INT32_MAX ? INT32_MAX : (int32_t)chunks;
}

bool imatrix_collector_get(const imatrix_collector *c, const char *weight_name, const double **sum2, int64_t *n_in,
                           int64_t *count) {
    if (!c || !weight_name) return false;
    const collector_entry *e = find_entry(c, weight_name);
    if (!e) return false;
    if (sum2) *sum2 = e->sum2;
    if (n_in) *n_in = e->n_in;
    if (count) *count = e->count;
    return true;
}

static int cmp_entry_ptr(const void *a, const void *b) {
    return strcmp((*(const collector_entry *const *)a)->name, (*(const collector_entry *const *)b)->name);
}

/* Writes the GGUF to fp: KVs, then per entry (sorted by name) NAME.in_sum2 and NAME.counts. */
static bool write_gguf(const imatrix_collector *c, FILE *fp, const collector_entry *const *order, char *err, size_t errlen) {
    gguf_writer *w = gguf_writer_create();
    if (!w) { set_msg(err, errlen, "out of memory"); return false; }
    gguf_writer_set_str(w, "general.type", "imatrix");
    gguf_writer_set_arr_str(w, "imatrix.datasets", (const char *const *)c->datasets, c->n_datasets);
    gguf_writer_set_u32(w, "imatrix.chunk_count", (uint32_t)imatrix_collector_chunk_count(c));
    gguf_writer_set_u32(w, "imatrix.chunk_size", (uint32_t)c->chunk_size);
    bool ok = true;
    for (size_t k = 0; ok && k < c->n_entries; k++) {
        const collector_entry *e = order[k];
        char name[GGUF_MAX_NAME + 16];
        const int64_t ne_sum2[1] = { e->n_in }, ne_counts[1] = { 1 };
        snprintf(name, sizeof name, "%s" IMATRIX_SUM2_SUFFIX, e->name);
        ok = strlen(e->name) + strlen(IMATRIX_SUM2_SUFFIX) < GGUF_MAX_NAME &&
             gguf_writer_add_tensor(w, name, LLMPI_TYPE_F32, 1, ne_sum2) >= 0;
        snprintf(name, sizeof name, "%s" IMATRIX_COUNTS_SUFFIX, e->name);
        ok = ok && gguf_writer_add_tensor(w, name, LLMPI_TYPE_F32, 1, ne_counts) >= 0;
        if (!ok)
            set_msg(err, errlen, "cannot store %s: tensor names must be shorter than %d bytes with the %s suffix",
                    e->name, GGUF_MAX_NAME, IMATRIX_SUM2_SUFFIX);
    }
    gguf_error ge;
    if (ok && gguf_writer_write_header(w, fp, &ge) != GGUF_OK) {
        set_msg(err, errlen, "%s", ge.msg);
        ok = false;
    }
    int64_t max_n = 1;
    for (size_t k = 0; k < c->n_entries; k++)
        if (c->entries[k].n_in > max_n) max_n = c->entries[k].n_in;
    float *buf = ok ? malloc((size_t)max_n * sizeof *buf) : NULL;
    if (ok && !buf) { set_msg(err, errlen, "out of memory"); ok = false; }
    for (size_t k = 0; ok && k < c->n_entries; k++) {
        const collector_entry *e = order[k];
        for (int64_t j = 0; j < e->n_in; j++) buf[j] = (float)e->sum2[j];
        const float count = (float)e->count;
        if (gguf_writer_write_tensor_data(w, fp, (int)(2 * k), buf, (uint64_t)e->n_in * sizeof(float), &ge) != GGUF_OK ||
            gguf_writer_write_tensor_data(w, fp, (int)(2 * k + 1), &count, sizeof count, &ge) != GGUF_OK) {
            set_msg(err, errlen, "%s", ge.msg);
            ok = false;
        }
    }
    free(buf);
    gguf_writer_free(w);
    return ok;
}

bool imatrix_collector_save(const imatrix_collector *c, const char *path, char *err, size_t errlen) {
    if (!c || !path) { set_msg(err, errlen, "imatrix: no collector or path"); return false; }
    if (c->failed) { set_msg(err, errlen, "%s", c->error); return false; }
    if (c->n_entries == 0) { set_msg(err, errlen, "%s: no activations were collected", path); return false; }
    if (c->n_entries > (size_t)INT32_MAX / 2) { set_msg(err, errlen, "%s: too many entries", path); return false; }
    const collector_entry **order = malloc(c->n_entries * sizeof *order);
    const size_t tmp_len = strlen(path) + 8;
    char *tmp = malloc(tmp_len);
    if (!order || !tmp) {
        free(order);
        free(tmp);
        set_msg(err, errlen, "%s: out of memory", path);
        return false;
    }
    for (size_t i = 0; i < c->n_entries; i++) order[i] = &c->entries[i];
    qsort(order, c->n_entries, sizeof *order, cmp_entry_ptr);   /* llama-imatrix's order: by name */

    /* Written next to the target and renamed over it: a failure never leaves a truncated imatrix. */
    snprintf(tmp, tmp_len, "%s.tmp", path);
    char msg[IMATRIX_ERR_MAX] = "";
    bool ok = false;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        snprintf(msg, sizeof msg, "%s", strerror(errno));
    } else {
        ok = write_gguf(c, fp, order, msg, sizeof msg);
        if (fclose(fp) != 0 && ok) {
            snprintf(msg, sizeof msg, "write failed: %s", strerror(errno));
            ok = false;
        }
        if (ok && rename(tmp, path) != 0) {
            snprintf(msg, sizeof msg, "cannot rename %s: %s", tmp, strerror(errno));
            ok = false;
        }
        if (!ok) remove(tmp);
    }
    if (!ok) set_msg(err, errlen, "%s: %s", path, msg);
    free(order);
    free(tmp);
    return ok;
}

/* ==== reader =================================================================================== */

static void entry_data_free(imatrix_entry_data *e) {
    free(e->name);
    free(e->sums);
    free(e->counts);
    free(e->importance);
}

void imatrix_data_free(imatrix_data *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_entries; i++) entry_data_free(&d->entries[i]);
    for (size_t i = 0; i < d->n_datasets; i++) free(d->datasets[i]);
    free(d->entries);
    free(d->datasets);
    memset(d, 0, sizeof *d);
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const imatrix_entry_data *)a)->name, ((const imatrix_entry_data *)b)->name);
}

const imatrix_entry_data *imatrix_data_find(const imatrix_data *d, const char *weight_name) {
    if (!d || !weight_name || d->n_entries == 0) return NULL;
    const imatrix_entry_data key = { .name = (char *)(uintptr_t)weight_name };
    return bsearch(&key, d->entries, d->n_entries, sizeof *d->entries, cmp_entry_name);
}

/* Appends an entry with room for n_per_mat * n_mat values; NULL if out of memory. */
static imatrix_entry_data *add_entry(imatrix_data *d, size_t *cap, const char *name, size_t name_len, int64_t n_per_mat,
                                     int64_t n_mat) {
    if (d->n_entries == *cap) {
        const size_t ncap = *cap ? 2 * *cap : 64;
        imatrix_entry_data *p = realloc(d->entries, ncap * sizeof *p);
        if (!p) return NULL;
        d->entries = p;
        *cap = ncap;
    }
    if (n_per_mat < 1 || n_mat < 1 || (uint64_t)n_per_mat > SIZE_MAX / sizeof(float) / (uint64_t)n_mat ||
        (uint64_t)n_mat > SIZE_MAX / sizeof(int64_t))
        return NULL;
    const size_t n = (size_t)n_per_mat * (size_t)n_mat;
    imatrix_entry_data e = { dup_str(name, name_len), n_per_mat, n_mat, malloc(n * sizeof(float)),
                             malloc((size_t)n_mat * sizeof(int64_t)), malloc(n * sizeof(float)) };
    if (!e.name || !e.sums || !e.counts || !e.importance) { entry_data_free(&e); return NULL; }
    d->entries[d->n_entries++] = e;
    return &d->entries[d->n_entries - 1];
}

static bool add_dataset(imatrix_data *d, const char *s, size_t len) {
    char **p = realloc(d->datasets, (d->n_datasets + 1) * sizeof *p);
    if (!p) return false;
    d->datasets = p;
    if (!(d->datasets[d->n_datasets] = dup_str(s, len))) return false;
    d->n_datasets++;
    return true;
}

/* Sorts, rejects duplicates and non-finite importance values. */
static bool finish_entries(imatrix_data *d, const char *path, char *err, size_t errlen) {
    if (d->n_entries == 0) { set_msg(err, errlen, "%s: no imatrix entries", path); return false; }
    qsort(d->entries, d->n_entries, sizeof *d->entries, cmp_entry_name);
    for (size_t i = 0; i < d->n_entries; i++) {
        const imatrix_entry_data *e = &d->entries[i];
        if (i > 0 && strcmp(e->name, d->entries[i - 1].name) == 0) {
            set_msg(err, errlen, "%s: duplicate entry %s", path, e->name);
            return false;
        }
        for (int64_t j = 0; j < e->n_per_mat * e->n_mat; j++)
            if (!isfinite(e->importance[j])) {
                set_msg(err, errlen, "%s: non-finite value in %s (index %" PRId64 ")", path, e->name, j);
                return false;
            }
    }
    return true;
}

static float load_f32(const void *p, int64_t i) {
    float v;
    memcpy(&v, (const uint8_t *)p + 4 * i, 4);
    return v;
}

static bool load_gguf(const gguf_file *g, const char *path, imatrix_data *d, char *err, size_t errlen) {
    if (g->n_tensors == 0) { set_msg(err, errlen, "%s: no data (the GGUF has no tensors)", path); return false; }
    const gguf_kv *ds = gguf_find_kv(g, "imatrix.datasets");
    if (ds && ds->value.type == GGUF_TYPE_ARRAY && ds->value.arr.elem_type == GGUF_TYPE_STRING)
        for (uint64_t i = 0; i < ds->value.arr.n; i++)
            if (!add_dataset(d, ds->value.arr.strs[i].ptr, (size_t)ds->value.arr.strs[i].len)) {
                set_msg(err, errlen, "%s: out of memory", path);
                return false;
            }
    int64_t v = 0;
    const bool has_count = gguf_get_int(g, "imatrix.chunk_count", &v) == GGUF_OK;
    if (has_count) d->chunk_count = v < 0 || v > INT32_MAX ? 0 : (int32_t)v;
    v = 0;
    const bool has_size = gguf_get_int(g, "imatrix.chunk_size", &v) == GGUF_OK;
    if (has_size) d->chunk_size = v < 0 || v > INT32_MAX ? 0 : (int32_t)v;
    d->has_metadata = ds != NULL && has_count && has_size;

    size_t cap = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        const size_t nl = strlen(t->name);
        const bool is_sum2 = has_suffix(t->name, nl, IMATRIX_SUM2_SUFFIX);
        const bool is_counts = has_suffix(t->name, nl, IMATRIX_COUNTS_SUFFIX);
        if (!is_sum2 && !is_counts) continue;   /* llama.cpp ignores other tensors too */
        const size_t base_len = nl - strlen(is_sum2 ? IMATRIX_SUM2_SUFFIX : IMATRIX_COUNTS_SUFFIX);
        char other[GGUF_MAX_NAME + 16];
        snprintf(other, sizeof other, "%.*s%s", (int)base_len, t->name, is_sum2 ? IMATRIX_COUNTS_SUFFIX : IMATRIX_SUM2_SUFFIX);
        const gguf_tensor *pair = gguf_find_tensor(g, other);
        if (!pair) {
            set_msg(err, errlen, "%s: mismatched sums and counts for %.*s (no %s)", path, (int)base_len, t->name, other);
            return false;
        }
        if (is_counts) continue;                /* handled with its in_sum2 */
        const gguf_tensor *sums = t, *counts = pair;
        if (sums->type != LLMPI_TYPE_F32 || counts->type != LLMPI_TYPE_F32) {
            set_msg(err, errlen, "%s: sums and counts for %.*s must be F32", path, (int)base_len, t->name);
            return false;
        }
        const int64_t n_mat = counts->n_elements;
        if (sums->n_elements % n_mat != 0) {
            set_msg(err, errlen, "%s: %s has %" PRId64 " values, not a multiple of its %" PRId64 " counts", path, sums->name,
                    sums->n_elements, n_mat);
            return false;
        }
        const int64_t n_per_mat = sums->n_elements / n_mat;
        imatrix_entry_data *e = add_entry(d, &cap, t->name, base_len, n_per_mat, n_mat);
        if (!e) { set_msg(err, errlen, "%s: out of memory", path); return false; }
        for (int64_t m = 0; m < n_mat; m++) {
            const float cf = load_f32(counts->data, m);
            if (!isfinite(cf) || cf < 0 || cf > 9.0e18f) {
                set_msg(err, errlen, "%s: bad count %g for %s", path, (double)cf, e->name);
                return false;
            }
            e->counts[m] = llroundf(cf);
            const float count = (float)e->counts[m];
            for (int64_t j = 0; j < n_per_mat; j++) {
                const int64_t k = m * n_per_mat + j;
                e->sums[k] = load_f32(sums->data, k);
                e->importance[k] = count > 0 ? e->sums[k] / count : 1.0f;
            }
        }
    }
    return finish_entries(d, path, err, errlen);
}

/* Legacy .dat: i32 n_entries; per entry i32 name_len, name bytes, i32 ncall, i32 nval, f32[nval]
 * (each the mean squared activation times ncall); optional trailer i32 chunk_count, i32 len, dataset. */
typedef struct { const uint8_t *p; size_t len, pos; } byte_reader;

static bool read_i32(byte_reader *r, int32_t *v) {
    if (r->len - r->pos < 4) return false;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return true;
}

static bool load_legacy(const uint8_t *buf, size_t len, const char *path, imatrix_data *d, char *err, size_t errlen) {
    byte_reader r = { buf, len, 0 };
    int32_t n_entries = 0;
    if (!read_i32(&r, &n_entries) || n_entries < 1) {
        set_msg(err, errlen, "%s: not an imatrix (neither GGUF nor legacy format: no entries)", path);
        return false;
    }
    d->is_legacy = true;
    size_t cap = 0;
    for (int32_t i = 0; i < n_entries; i++) {
        int32_t name_len = 0, ncall = 0, nval = 0;
        const size_t at = r.pos;
        if (!read_i32(&r, &name_len) || name_len < 1 || (size_t)name_len > r.len - r.pos) {
            set_msg(err, errlen, "%s: legacy imatrix: bad name of entry %d at byte %zu", path, (int)i + 1, at);
            return false;
        }
        const char *name = (const char *)r.p + r.pos;
        r.pos += (size_t)name_len;
        if (memchr(name, 0, (size_t)name_len)) {
            set_msg(err, errlen, "%s: legacy imatrix: entry %d has a NUL in its name", path, (int)i + 1);
            return false;
        }
        if (!read_i32(&r, &ncall) || !read_i32(&r, &nval) || nval < 1 || (size_t)nval > (r.len - r.pos) / 4) {
            set_msg(err, errlen, "%s: legacy imatrix: bad or truncated values of %.*s", path, (int)name_len, name);
            return false;
        }
        imatrix_entry_data *e = add_entry(d, &cap, name, (size_t)name_len, nval, 1);
        if (!e) { set_msg(err, errlen, "%s: out of memory", path); return false; }
        e->counts[0] = ncall;
        for (int32_t j = 0; j < nval; j++) {
            e->sums[j] = load_f32(r.p + r.pos, j);
            e->importance[j] = ncall > 0 ? e->sums[j] / (float)ncall : e->sums[j];
        }
        r.pos += (size_t)nval * 4;
    }
    int32_t chunks = 0, ds_len = 0;
    if (read_i32(&r, &chunks)) {
        d->chunk_count = chunks;
        if (read_i32(&r, &ds_len) && ds_len > 0 && (size_t)ds_len <= r.len - r.pos &&
            !add_dataset(d, (const char *)r.p + r.pos, strnlen((const char *)r.p + r.pos, (size_t)ds_len))) {
            set_msg(err, errlen, "%s: out of memory", path);
            return false;
        }
    }
    return finish_entries(d, path, err, errlen);
}

bool imatrix_load(const char *path, imatrix_data *out, char *err, size_t errlen) {
    if (!out) return false;
    memset(out, 0, sizeof *out);
    if (!path) { set_msg(err, errlen, "imatrix: no path"); return false; }
    gguf_file g;
    gguf_error ge;
    const gguf_status st = gguf_open(path, true, &g, &ge);
    bool ok;
    if (st == GGUF_OK) {
        ok = load_gguf(&g, path, out, err, errlen);
        gguf_free(&g);
    } else if (st == GGUF_E_MAGIC) {
        /* Not GGUF: try the legacy format (read whole; imatrix files are small: 4 bytes per column). */
        FILE *f = fopen(path, "rb");
        if (!f) { set_msg(err, errlen, "%s: %s", path, strerror(errno)); return false; }
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, n;
        ok = true;
        do {
            if (cap - len < 65536) {
                cap = cap ? 2 * cap : 1 << 20;
                uint8_t *nb = realloc(buf, cap);
                if (!nb) { ok = false; break; }
                buf = nb;
            }
            n = fread(buf + len, 1, cap - len, f);
            len += n;
        } while (n > 0);
        if (!ok || ferror(f)) {
            set_msg(err, errlen, "%s: %s", path, ok ? "read error" : "out of memory");
            ok = false;
        }
        fclose(f);
        if (ok) ok = load_legacy(buf, len, path, out, err, errlen);
        free(buf);
    } else {
        set_msg(err, errlen, "%s: %s", path, ge.msg);
        ok = false;
    }
    if (!ok) imatrix_data_free(out);
    return ok;
}
