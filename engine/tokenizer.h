/* Tokenizers built from GGUF tokenizer.ggml.* metadata, reproducing llama.cpp (src/llama-vocab.cpp,
 * src/unicode.cpp) token for token:
 *   - tokenizer.ggml.model "llama": SentencePiece BPE with scores (merge the adjacent pair whose
 *     concatenation is the best-scoring token, ties leftmost; unknown bytes as <0xNN>), spaces -> U+2581,
 *     optional leading space (tokenizer.ggml.add_space_prefix, default true);
 *   - tokenizer.ggml.model "gpt2": byte-level BPE with ranked merges after a pre-tokenizer chosen by
 *     tokenizer.ggml.pre (default, gpt-2, llama3/llama-bpe, qwen2, smollm, deepseek-llm and aliases).
 * Special tokens (CONTROL / USER_DEFINED / UNKNOWN types) are split out of the text before tokenizing:
 * USER_DEFINED always, CONTROL and UNKNOWN only when parse_special is set.
 * See docs/tokenizer.md. Everything here is thread-safe for concurrent reads of one tokenizer. */
#ifndef LLMPI_TOKENIZER_H
#define LLMPI_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct llmpi_tokenizer llmpi_tokenizer;

/* Builds the tokenizer from the tokenizer.ggml.* keys of f. Copies everything it needs (f may be freed
 * afterwards). Returns 0, or -1 with a one-line message in err (e.g. "no tokenizer in file",
 * "unsupported tokenizer.ggml.model 'bert'", "unsupported tokenizer.ggml.pre 'xyz' (supported: ...)"). */
int  tokenizer_create(const gguf_file *f, llmpi_tokenizer **out, char *err, size_t errlen);
void tokenizer_free(llmpi_tokenizer *t);

/* Encodes text[0..len) (any bytes; invalid UTF-8 is handled like llama.cpp does).
 * add_special: prepend BOS if tokenizer_add_bos() and append EOS if the model's add_eos_token is set.
 * parse_special: also split out CONTROL token texts such as "<|eot_id|>" (USER_DEFINED ones always are).
 * Writes up to max_tokens ids; returns the total number of tokens, which may exceed max_tokens (then call
 * again with a bigger buffer), or -1 on error (out of memory, text longer than INT32_MAX/4 bytes). */
int  tokenizer_encode(const llmpi_tokenizer *t, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t *tokens, int max_tokens);

/* Bytes of token `id`: SPM "▁" -> space and <0xNN> -> that byte; BPE byte-level characters -> bytes.
 * CONTROL and UNKNOWN tokens render as empty unless render_special. Not NUL-terminated. Returns the byte
 * length written (<= buflen), or the needed length (> buflen, nothing written) if buf is too small;
 * -1 for an invalid id. */
int  tokenizer_token_to_piece(const llmpi_tokenizer *t, int32_t id, char *buf, int buflen, bool render_special);

/* Whole-sequence detokenization, exactly llama.cpp's llama_detokenize(remove_special, unparse_special):
 *   - the first piece loses one leading space when the model uses add_space_prefix (SPM), unless
 *     remove_special drops a leading BOS first;
 *   - remove_special: drop a leading BOS (if add_bos) and a trailing EOS (if add_eos);
 *   - render_special: render CONTROL/UNKNOWN token texts instead of nothing;
 *   - BPE pre-tokenizers with clean_up_tokenization_spaces (gpt-2, default, llama3, ...) then remove the
 *     space in " ?", " !", " .", " ,", " 's", " 'm", " 're", " 've" and around a lone " ' ".
 * Returns the byte length written (<= outlen; a NUL is added when there is room for it), or a needed length
 * (> outlen, contents unspecified) if out is too small; -1 if an id is invalid. */
int  tokenizer_decode(const llmpi_tokenizer *t, const int32_t *ids, int n, char *out, int outlen,
                      bool remove_special, bool render_special);

int     tokenizer_n_vocab(const llmpi_tokenizer *t);
int32_t tokenizer_bos(const llmpi_tokenizer *t);   /* -1 if none */
int32_t tokenizer_eos(const llmpi_tokenizer *t);   /* -1 if none */
int32_t tokenizer_eot(const llmpi_tokenizer *t);   /* -1 if none */
int32_t tokenizer_eom(const llmpi_tokenizer *t);   /* -1 if none */
int32_t tokenizer_unk(const llmpi_tokenizer *t);   /* -1 if none */
bool    tokenizer_add_bos(const llmpi_tokenizer *t);
bool    tokenizer_add_eos(const llmpi_tokenizer *t);
bool    tokenizer_add_space_prefix(const llmpi_tokenizer *t);
/* End of generation: eos, eot, eom and the tokens llama.cpp recognises by text (<|eot_id|>, <|im_end|>,
 * <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|>, ...). */
bool    tokenizer_is_eog(const llmpi_tokenizer *t, int32_t id);
/* CONTROL (or UNKNOWN) token: rendered only with render_special. False for invalid ids. */
bool    tokenizer_is_control(const llmpi_tokenizer *t, int32_t id);
const char *tokenizer_model_name(const llmpi_tokenizer *t);  /* "llama" / "gpt2" */
const char *tokenizer_pre_name(const llmpi_tokenizer *t);    /* BPE pre-tokenizer; "default" for SPM or if absent */
/* Raw vocabulary text of a token (not NUL-terminated; *len receives its length); NULL for an invalid id. */
const char *tokenizer_token_text(const llmpi_tokenizer *t, int32_t id, int *len);
/* Id of the token whose vocabulary text is exactly text[0..len), or -1. */
int32_t tokenizer_find_token(const llmpi_tokenizer *t, const char *text, size_t len);
/* Longest piece of any token (render_special = true), for sizing buffers. */
int     tokenizer_max_piece_len(const llmpi_tokenizer *t);

/* Streaming detokenizer: feed ids one at a time and get only complete, valid UTF-8 characters out. A
 * multi-byte character split across tokens is held back until complete; bytes that can never form a valid
 * character become U+FFFD (one per maximal invalid subpart). No leading-space removal and no space clean-up
 * (what llama.cpp's streaming front ends print). init sets render_special = false; set it afterwards to render
 * CONTROL tokens.
 * feed/flush return the number of bytes written to out (not NUL-terminated); -1 for an invalid id; if out is
 * too small they return -max(bytes needed, 2) (so always < -1) and leave the stream unchanged. A buffer of
 * 3 * (tokenizer_max_piece_len(t) + 4) bytes is always enough for feed, 3 bytes for flush. */
typedef struct {
    char pending[8];       /* incomplete UTF-8 sequence held back (at most 3 bytes) */
    int  n_pending;
    bool render_special;
} tokenizer_stream;
void tokenizer_stream_init(tokenizer_stream *s);
int  tokenizer_stream_feed(const llmpi_tokenizer *t, tokenizer_stream *s, int32_t id, char *out, int outlen);
int  tokenizer_stream_flush(tokenizer_stream *s, char *out, int outlen);

#endif
