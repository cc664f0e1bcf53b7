#!/bin/sh
# Runs each test binary given on the command line (under $RUN, e.g. qemu) from the repo root.
# Each binary prints its own "N passed, N failed" last line; this sums them and prints the total
# as the final line. Exit status is non-zero if any test failed or any binary crashed.
passed=0; failed=0; crashed=0
for t in "$@"; do
  out=$(LLMPI_BINDIR="${BINDIR:-.}" LLMPI_RUN="$RUN" $RUN "$t" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -v '^ok ' 
  last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$last" ]; then
    echo "FAIL $t: exited $rc without a summary line"; crashed=$((crashed + 1)); continue
  fi
  p=${last%% passed*}; f=${last#*, }; f=${f%% failed*}
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "FAIL $t: exit status $rc"; crashed=$((crashed + 1)); fi
done
failed=$((failed + crashed))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
