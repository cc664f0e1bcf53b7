/* Embedding LLMPi: load a model, generate greedily, stream the text. Build:
 *   cc -Iengine docs/api-example.c build/libllmpi.a -lm -pthread -o api-example
 * Run: ./api-example MODEL.gguf "Once upon a time" */
#include <stdio.h>
#include "llmpi.h"

static bool on_token(int32_t token, const char *text, int len, void *user) {
    fwrite(text, 1, (size_t)len, stdout);
    return true; /* return false to stop */
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL.gguf PROMPT\n", argv[0]); return 2; }
    llmpi_error err;
    llmpi_model *model;
    llmpi_context *ctx;
    if (llmpi_model_load(argv[1], NULL, &model, &err)) { fprintf(stderr, "error: %s\n", err.msg); return 1; }
    if (llmpi_context_create(model, NULL, &ctx, &err)) { fprintf(stderr, "error: %s\n", err.msg); return 1; }
    int32_t prompt[512];
    int n = llmpi_tokenize(model, argv[2], -1, true, false, prompt, 512, &err);
    if (n < 0 || n > 512) { fprintf(stderr, "error: cannot tokenize the prompt\n"); return 1; }
    llmpi_sampler_params sp = llmpi_sampler_default_params();
    sp.temp = 0; /* greedy */
    llmpi_sampler *sampler = llmpi_sampler_create(&sp);
    printf("%s", argv[2]);
    if (llmpi_generate(ctx, sampler, prompt, n, 32, false, on_token, NULL, NULL, &err)) fprintf(stderr, "error: %s\n", err.msg);
    printf("\n");
    llmpi_sampler_free(sampler);
    llmpi_context_free(ctx);
    llmpi_model_free(model);
    return 0;
}
