#!/usr/bin/env bash
# What a second worker process adds on the host: `paratool up --skip-training` (broker, worker,
# catalogue) and a second `paratool serve` in its consumer group, both serving the demo tools as
# Context+Docs (~500 prompt tokens per request, the longest prompts the service makes), 16
# requests sent at once (batches of up to 8), then the second worker's /proc/<pid>/smaps_rollup
# a few seconds after the last answer (past the one-second idle release of its working memory).
#
# Usage (from the repository root, after `swift build -c release`):
#   Benchmarks/second_worker_memory.sh [LABEL]
# Settings (environment variables): PARATOOL [.build/release/paratool], REQUESTS [16],
#   SETTLE [4] seconds after the last answer, WORK [a new temporary folder].
# Any other environment (MALLOC_ARENA_MAX, OPENBLAS_CORETYPE, …) is passed to both processes, so
# `MALLOC_ARENA_MAX=8 Benchmarks/second_worker_memory.sh eight-heaps` measures a setting against
# the default. Prints one table row: label, private dirty, anonymous, shared clean, resident (MB).
set -euo pipefail
cd "$(dirname "$0")/.."

LABEL=${1:-default}
PARATOOL=${PARATOOL:-.build/release/paratool}
REQUESTS=${REQUESTS:-16}
SETTLE=${SETTLE:-4}
WORK=${WORK:-$(mktemp -d)}
[ -x "$PARATOOL" ] || { echo "no $PARATOOL: run swift build -c release first" >&2; exit 1; }
mkdir -p "$WORK/store" "$WORK/answers"

pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$PARATOOL" up --skip-training --adapter-store "$WORK/store" --metrics-port 0 \
  > "$WORK/up.out" 2> "$WORK/up.log" &
pids+=($!)
for _ in $(seq 1 120); do grep -q '^bootstrap:' "$WORK/up.out" 2>/dev/null && break; sleep 0.5; done
BROKERS=$(sed -n 's/^bootstrap: *//p' "$WORK/up.out" | head -1)
[ -n "$BROKERS" ] || { echo "up printed no bootstrap line; see $WORK/up.log" >&2; exit 1; }

"$PARATOOL" serve --brokers "$BROKERS" --adapter-store "$WORK/store" --document-fallback \
  --metrics-port 0 --worker-id second-worker > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVE=$!
pids+=("$SERVE")
# Let the group rebalance so the second worker owns its share of the partitions.
sleep 15

queries=("What's the weather in Oslo right now?" "Convert 250 euros to yen."
         "Find flights from Boston to Denver on 2026-12-20." "Set a timer for 12 minutes."
         "How warm is it in Lisbon today, in celsius?" "How many Swiss francs is 80 dollars?"
         "Any flights from Madrid to Rome on January 5?" "Start a 3 minute timer.")
senders=()
for i in $(seq 1 "$REQUESTS"); do
  q=${queries[$(( (i - 1) % ${#queries[@]} ))]}
  "$PARATOOL" send --brokers "$BROKERS" --query "$q" > "$WORK/answers/$i.txt" 2>&1 &
  senders+=($!)
done
for p in "${senders[@]}"; do wait "$p" || true; done
sleep "$SETTLE"

served=$(grep -c 'second-worker' "$WORK"/answers/*.txt | awk -F: '{s += $2} END {print s + 0}')
awk -v label="$LABEL" -v served="$served" -v requests="$REQUESTS" '
  /^Rss:/ {rss = $2} /^Private_Dirty:/ {pd = $2} /^Anonymous:/ {anon = $2} /^Shared_Clean:/ {sc = $2}
  END {printf "| %s | %.1f | %.1f | %.1f | %.1f | %d of %d |\n", label, pd / 1024, anon / 1024, sc / 1024, rss / 1024, served, requests}
' "/proc/$SERVE/smaps_rollup"
grep -E '^(model name|flags)' /proc/cpuinfo | head -2 | sed -E 's/^flags.*/flags: '"$(grep -oE '\b(avx2|fma|f16c|avx512f|avx512bw|avx512_vnni|avx_vnni)\b' /proc/cpuinfo | sort -u | tr '\n' ' ')"'/' >&2
