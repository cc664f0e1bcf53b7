# LLMPi build. Sources are picked up by directory, so adding a file needs no edit here:
#   engine/*.c quant/*.c kernels/*.c  -> build/libllmpi.a
#   tools/llmpi-*.c                   -> one executable each (at the repo root for the main build)
#   tools/*.c (others)                -> linked into every tool (shared CLI helpers, power sampler)
#   tests/test_*.c                    -> one test executable each; tests/*_util.c linked into all
# Variants: `make check` (ASan+UBSan), `make cross` / `make test-arm` (aarch64 under qemu),
# `make fuzz` (libFuzzer over the GGUF parser), `make tsan`.

BUILD   ?= build
BINDIR  ?= .
PREFIX  ?= /usr/local
RUN     ?=
OPT     ?= -O2
CFLAGS_EXTRA ?=
LDFLAGS_EXTRA ?=

HOST_ARCH := $(shell $(CC) -dumpmachine 2>/dev/null)
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(CI),true)
WARN += -Werror
endif
CFLAGS  := -std=c11 $(OPT) -g $(WARN) -D_DEFAULT_SOURCE -D_GNU_SOURCE -pthread -MMD -MP \
           -Iengine -Iquant -Ikernels -Itools $(CFLAGS_EXTRA)
LDLIBS  := -lm -pthread $(LDFLAGS_EXTRA)

LIB_SRC   := $(wildcard engine/*.c quant/*.c kernels/*.c)
TOOL_MAIN := $(wildcard tools/llmpi-*.c)
TOOL_LIB  := $(filter-out $(TOOL_MAIN),$(wildcard tools/*.c))
TEST_MAIN := $(wildcard tests/test_*.c)
TEST_LIB  := $(wildcard tests/*_util.c)

# x86 SIMD files carry their ISA in the name and are compiled with those flags only;
# the code inside is selected at run time (cpuid), so the library still runs on any x86-64.
ifneq (,$(findstring x86_64,$(HOST_ARCH)))
FLAGS_avx2   := -mavx2 -mfma -mf16c
FLAGS_avx512 := -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c
else
LIB_SRC := $(filter-out $(wildcard kernels/*_avx2*.c kernels/*_avx512*.c),$(LIB_SRC))
endif
ISA_FLAGS = $(if $(findstring _avx512,$<),$(FLAGS_avx512),$(if $(findstring _avx2,$<),$(FLAGS_avx2)))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ  := $(TOOL_LIB:%.c=$(BUILD)/%.o)
TEST_LOBJ := $(TEST_LIB:%.c=$(BUILD)/%.o)
LIBA      := $(BUILD)/libllmpi.a
TOOLS     := $(patsubst tools/%.c,$(BINDIR)/%,$(TOOL_MAIN))
TESTS     := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_MAIN))

.PHONY: all lib tools tests test check tsan cross cross-a76 cross-v8 test-arm fuzz bench install clean
all: lib tools

lib: $(LIBA)
tools: $(TOOLS)
tests: $(TESTS) $(BUILD)/api-example $(BUILD)/tests/bench_kernels

# The embedding example from docs/, built exactly as a user would (only llmpi.h and the library).
$(BUILD)/api-example: docs/api-example.c $(LIBA)
	$(CC) $(CFLAGS) -Wno-unused-parameter -Iengine -o $@ $< $(LIBA) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_FLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BINDIR)/llmpi-%: $(BUILD)/tools/llmpi-%.o $(TOOL_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_LOBJ) $(TOOL_OBJ) $(LIBA)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Runs every test binary from the repository root; the last line is "N passed, N failed".
test: tests tools
	@RUN="$(RUN)" BINDIR="$(BINDIR)" sh tests/run_all.sh $(TESTS)

SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
check:
	$(MAKE) BUILD=build/san BINDIR=build/san/bin OPT=-O1 CFLAGS_EXTRA="$(SAN)" LDFLAGS_EXTRA="$(SAN)" test

tsan:
	$(MAKE) BUILD=build/tsan BINDIR=build/tsan/bin OPT=-O1 CFLAGS_EXTRA="-fsanitize=thread" LDFLAGS_EXTRA="-fsanitize=thread" test

# aarch64: cortex-a76 (Raspberry Pi 5, dotprod) and plain armv8-a (Raspberry Pi 4, no dotprod).
CROSS_CC ?= aarch64-linux-gnu-gcc
QEMU     ?= qemu-aarch64-static
cross: cross-a76 cross-v8
cross-a76:
	$(MAKE) CC=$(CROSS_CC) BUILD=build/arm-a76 BINDIR=build/arm-a76/bin CFLAGS_EXTRA="-mcpu=cortex-a76" LDFLAGS_EXTRA=-static all tests
cross-v8:
	$(MAKE) CC=$(CROSS_CC) BUILD=build/arm-v8 BINDIR=build/arm-v8/bin CFLAGS_EXTRA="-march=armv8-a" LDFLAGS_EXTRA=-static all tests
test-arm: cross
	$(MAKE) CC=$(CROSS_CC) BUILD=build/arm-a76 BINDIR=build/arm-a76/bin CFLAGS_EXTRA="-mcpu=cortex-a76" LDFLAGS_EXTRA=-static RUN="$(QEMU) -cpu cortex-a76" test
	$(MAKE) CC=$(CROSS_CC) BUILD=build/arm-v8 BINDIR=build/arm-v8/bin CFLAGS_EXTRA="-march=armv8-a" LDFLAGS_EXTRA=-static RUN="$(QEMU) -cpu cortex-a72" test

# libFuzzer over the GGUF parser (engine/gguf.c), seeded with the fixtures and the broken corpus.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
fuzz:
	$(MAKE) CC=$(FUZZ_CC) BUILD=build/fuzz BINDIR=build/fuzz/bin CFLAGS_EXTRA="-fsanitize=fuzzer-no-link,address,undefined" lib tests
	@mkdir -p build/fuzz/corpus build/fuzz/seeds
	build/fuzz/tests/test_gguf --write-corpus build/fuzz/seeds >/dev/null
	$(FUZZ_CC) -std=c11 -O1 -g -D_DEFAULT_SOURCE -Iengine -Iquant -fsanitize=fuzzer,address,undefined \
	  tests/fuzz/fuzz_gguf.c build/fuzz/libllmpi.a -lm -o build/fuzz/fuzz_gguf
	build/fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	  -artifact_prefix=build/fuzz/ build/fuzz/corpus build/fuzz/seeds

# Kernel microbenchmarks through kern_matmul with a measured read-bandwidth roofline
# (tests/bench_kernels.c, docs/kernels.md "make bench"); BENCH_ARGS e.g. "--quick --types q4_0".
# End-to-end speed: ./llmpi-bench -m MODEL.gguf (docs/bench.md).
BENCH_ARGS ?=
bench: $(BUILD)/tests/bench_kernels
	$(RUN) $(BUILD)/tests/bench_kernels $(BENCH_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 engine/llmpi.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build $(TOOLS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
