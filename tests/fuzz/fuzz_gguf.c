/* libFuzzer target for the GGUF parser (`make fuzz`): parse, then exercise every getter on every
 * key, the array element accessors, tensor lookup and gguf_print_info (to /dev/null). Built with
 * ASan+UBSan, so any out-of-bounds read, leak or undefined behaviour is a finding. */
#include "gguf.h"

#include <stdint.h>
#include <string.h>

static FILE *null_out;

static void exercise_value(const gguf_value *v, int depth) {
    if (v->type != GGUF_TYPE_ARRAY || depth > GGUF_MAX_ARRAY_DEPTH) return;
    int64_t i64;
    double f64;
    uint64_t n = v->arr.n;
    /* first, last and one past the end */
    uint64_t probe[3] = { 0, n ? n - 1 : 0, n };
    for (int k = 0; k < 3; k++) {
        (void)gguf_arr_int(v, probe[k], &i64);
        (void)gguf_arr_float(v, probe[k], &f64);
    }
    if (v->arr.elem_type == GGUF_TYPE_STRING && n) {
        volatile char sink = 0;
        for (uint64_t i = 0; i < n && i < 64; i++)
            if (v->arr.strs[i].len) sink ^= v->arr.strs[i].ptr[v->arr.strs[i].len - 1];
        (void)sink;
    }
    if (v->arr.elem_type == GGUF_TYPE_ARRAY)
        for (uint64_t i = 0; i < n && i < 16; i++) exercise_value(&v->arr.items[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!null_out) null_out = fopen("/dev/null", "w");
    gguf_file f;
    gguf_error err;
    if (gguf_parse(data, size, &f, &err) != GGUF_OK) return 0;
    char key[256];
    for (uint64_t i = 0; i < f.n_kv; i++) {
        const gguf_kv *kv = &f.kv[i];
        if (kv->key.len < sizeof key) {
            memcpy(key, kv->key.ptr, (size_t)kv->key.len);
            key[kv->key.len] = 0;
            uint32_t u32; int32_t i32; uint64_t u64; float f32; bool b; gguf_str s; int64_t i64; double f64;
            const gguf_value *arr;
            (void)gguf_get_u32(&f, key, &u32);
            (void)gguf_get_i32(&f, key, &i32);
            (void)gguf_get_u64(&f, key, &u64);
            (void)gguf_get_f32(&f, key, &f32);
            (void)gguf_get_bool(&f, key, &b);
            (void)gguf_get_str(&f, key, &s);
            (void)gguf_get_int(&f, key, &i64);
            (void)gguf_get_float(&f, key, &f64);
            (void)gguf_get_arr(&f, key, &arr);
        }
        exercise_value(&kv->value, 1);
    }
    for (uint64_t i = 0; i < f.n_tensors; i++) {
        const gguf_tensor *t = &f.tensors[i];
        (void)gguf_find_tensor(&f, t->name);
        /* touch the first and last byte of the tensor: must be inside the input */
        const volatile uint8_t *d = t->data;
        volatile uint8_t sink = d[0];
        sink ^= d[t->nbytes - 1];
        (void)sink;
    }
    if (null_out) gguf_print_info(&f, null_out);
    gguf_free(&f);
    return 0;
}
