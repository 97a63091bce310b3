#!/usr/bin/env bash
# Tests/Fuzz/run.sh SECONDS [TARGET...]: builds every libFuzzer target of Tests/Fuzz (Swift with
# -sanitize=fuzzer,address; the C code also with UndefinedBehaviorSanitizer) into .build-fuzz,
# runs each for SECONDS from its committed seed corpus and dictionary, and prints one line per
# target: `<target> <executions> <crashes>` (crashes: crash, leak, timeout and out-of-memory
# reports). Exits non-zero when any target found one; the inputs are kept under
# .build-fuzz/artifacts/<target>/, the logs under .build-fuzz/logs/, and `<target> <executions>
# <cov>` (libFuzzer's final coverage) in .build-fuzz/coverage.txt. FUZZ_EXTRA_ARGS adds libFuzzer
# flags (e.g. -runs=1000000).
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir=$(pwd)
root=$(cd ../.. && pwd)
scratch="$root/.build-fuzz"

seconds=${1:?usage: Tests/Fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=($(ls Sources | grep '^fuzz-'))
fi

build_log="$scratch/build.log"
mkdir -p "$scratch"
build=(swift build -c debug --scratch-path "$scratch"
  -Xswiftc -sanitize=fuzzer,address
  -Xcc -fsanitize=fuzzer-no-link,address,undefined -Xcc -fno-sanitize-recover=undefined)
if ! "${build[@]}" >"$build_log" 2>&1; then
  cat "$build_log" >&2
  echo "fuzz build failed" >&2
  exit 2
fi
bin="$scratch/debug"

: >"$scratch/coverage.txt"
failed=0
for t in "${targets[@]}"; do
  work="$scratch/corpus/$t"
  artifacts="$scratch/artifacts/$t"
  log="$scratch/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1
    -artifact_prefix="$artifacts/")
  [ -f "Dictionaries/$t.dict" ] && args+=(-dict="Dictionaries/$t.dict")
  [ -f "Options/$t.options" ] && args+=($(cat "Options/$t.options"))
  # shellcheck disable=SC2206
  args+=(${FUZZ_EXTRA_ARGS:-})
  before=$(find "$artifacts" -type f | wc -l)
  status=0
  # Swift's own backtracer would stop every thread on a crash: libFuzzer reports it instead.
  SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$fuzz_dir/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    "$bin/$t" "${args[@]}" "$work" "Corpus/$t" >"$log" 2>&1 || status=$?
  after=$(find "$artifacts" -type f | wc -l)
  crashes=$((after - before))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  echo "$t ${executions:-0} $crashes"
  echo "$t ${executions:-0} ${cov:-0}" >>"$scratch/coverage.txt"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    echo "  $t: see $log and $artifacts" >&2
    grep -m5 -E 'ERROR|Fatal error|==[0-9]+==' "$log" >&2 || true
  fi
done
exit "$failed"
