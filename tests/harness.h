/* Minimal test harness shared by every tests/test_*.c binary.
 *
 *   t_begin("dequant %s", name);      // start a test case
 *   CHECK(x == y, "x=%d y=%d", x, y); // a failed check marks the case failed and says why
 *   t_end();                          // counts the case as passed or failed
 *   return t_summary();               // prints "N passed, N failed"; exit code 1 on failure
 *
 * Fixture paths: t_shared("fixtures/real/stories260K.gguf") resolves under $LLMPI_SHARED
 * (default ../shared, relative to the repository root where `make test` runs). */
#ifndef LLMPI_TEST_HARNESS_H
#define LLMPI_TEST_HARNESS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

void t_begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void t_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int  t_end(void);            /* returns 1 if the case passed */
int  t_summary(void);        /* prints the summary line, returns the process exit code */
int  t_case_failed(void);    /* whether the current case has failed so far */

#define CHECK(cond, ...) do { if (!(cond)) t_fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* Path of a file under ../shared (or $LLMPI_SHARED). Returns a static buffer (rotating, 8 slots). */
const char *t_shared(const char *rel);
/* Reads a whole file (NUL-terminated, not counted in *len). Returns NULL (and a failed check) on error. Free with free(). */
void *t_read_file(const char *path, size_t *len);
/* Runs a shell command line (a tool under test), captures stdout+stderr into a malloc'd string. Returns exit status. */
int t_run(const char *cmdline, char **output);
/* Path of a built tool, e.g. t_tool("llmpi-run") -> "./llmpi-run" or "build/san/bin/llmpi-run", prefixed with
 * $LLMPI_RUN (qemu) when set. Static rotating buffer. */
const char *t_tool(const char *name);
/* Deterministic PRNG for tests (xorshift64*). */
uint64_t t_rand_u64(uint64_t *state);
float    t_rand_normal(uint64_t *state);
float    t_rand_uniform(uint64_t *state, float lo, float hi);
/* A fake sysfs tree under the test's temporary directory with one hwmon device `name` reporting a
 * constant `watts` (power1_input, microwatts): point LLMPI_SYSFS_ROOT at the returned path. Static buffer. */
const char *t_fake_hwmon(const char *subdir, const char *name, double watts);
/* A fresh temporary directory for this test binary (created on first call, under $TMPDIR or /tmp). */
const char *t_tmpdir(void);
#endif
