/* Shared command-line plumbing of the tools (llmpi-run, llmpi-bench, llmpi-perplexity, ...):
 * one error style ("PROG: error: ..." and exit 1; usage problems print the usage and exit 2) and
 * strict number parsing. Tools set cli_prog and cli_usage at the top of main. */
#ifndef LLMPI_TOOLS_CLI_H
#define LLMPI_TOOLS_CLI_H

#include <stddef.h>

extern const char *cli_prog;        /* program name for messages, e.g. "llmpi-run" */
extern const char *cli_usage;       /* full usage text printed by cli_usage_exit */
extern const char *cli_usage_extra; /* optional text appended to the usage (e.g. power options) */

void cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints "PROG: <fmt with arg>" and the usage on stderr, exits 2. */
void cli_usage_exit(const char *fmt, const char *arg) __attribute__((noreturn));
/* Integer / number option values: the whole string must parse and lie in [lo, hi], else cli_die
 * names the option and the value. */
long   cli_parse_long(const char *opt, const char *s, long lo, long hi);
double cli_parse_double(const char *opt, const char *s, double lo, double hi);
/* Reads a whole text file (NUL-terminated); len_out may be NULL. Dies with the path and reason. */
char  *cli_read_text_file(const char *path, size_t *len_out);

#endif
