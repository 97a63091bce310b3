#!/usr/bin/env bash
# The BFCL experiment of issue 5: parameterise the tools of the first N questions of BFCL
# `multiple` and `parallel_multiple`, train them on synthesized examples only (every BFCL question
# held out), and evaluate every mode on those questions. Resumable: rerun the same command after
# an interruption; finished synthesis, training jobs (checkpoints, --resume) and evaluated
# categories are skipped.
#
# Usage (from the repository root):  Benchmarks/bfcl_experiment.sh
# Settings (environment variables, defaults in brackets):
#   N [5]             questions per category (the first N of each file)
#   STEPS [40]        stage-1 steps per tool (the global baseline gets STEPS × tools, stage 3 JOINT_STEPS)
#   JOINT_STEPS [STEPS]  GATE_STEPS [300]  PER_TOOL [30] synthesized atomic examples per tool
#   LR [1e-3]  WARMUP [8]  MAX_NEW_TOKENS [256]  MODES [all]  MODEL [the default SmolLM2 GGUF]
#   WORK [Benchmarks/work/bfcl-N<N>-s<STEPS>]  RESULTS [Benchmarks/results]
#   BFCL [Tests/Fixtures/bfcl]  PARATOOL [a release build of this package]
#
# Sizing (measured on this project's 2-core machine, SmolLM2-135M, with the one-line role and
# rules): a training step on these tools' instances holds ~250-330 tokens, ~2-2.5 s at the backward
# pass's ~125 tokens/s, so a tool costs ~1.5-2 min at 40 steps. The first N questions of both
# categories use ~2.4 distinct tools per question (N=5: 23 tools, N=10: 48, N=50: 241). Stage 1
# and the global baseline (STEPS × tools steps) each cost about tools × STEPS × 2.2-2.6 s: the
# default N=5, STEPS=40 measured 1 h 43 min of training (stage 1 57 min, global 40 min, gate 4 min,
# joint 2 min) plus 5 min of evaluation (10 questions × 9 modes); N=10 doubles that, and N=50 at
# 75 steps would be ~25 h.
set -euo pipefail
# The whole script is one block, read before it runs, so editing this file mid-run cannot derail it.
{
cd "$(dirname "$0")/.."

N=${N:-5}
STEPS=${STEPS:-40}
JOINT_STEPS=${JOINT_STEPS:-$STEPS}
GATE_STEPS=${GATE_STEPS:-300}
PER_TOOL=${PER_TOOL:-30}
LR=${LR:-1e-3}
WARMUP=${WARMUP:-8}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-256}
MODES=${MODES:-paratool,context-docs,context-docs-examples,global,average,top1,oracle,no-finetune,embsim}
BFCL=${BFCL:-Tests/Fixtures/bfcl}
WORK=${WORK:-Benchmarks/work/bfcl-N${N}-s${STEPS}}
RESULTS=${RESULTS:-Benchmarks/results}
MODEL_ARGS=()
if [[ -n "${MODEL:-}" ]]; then MODEL_ARGS=(--model "$MODEL"); fi

if [[ -z "${PARATOOL:-}" ]]; then
  nice -n 10 swift build -c release --product paratool >&2
  PARATOOL="$(swift build -c release --show-bin-path)/paratool"
fi
P=(nice -n 10 "$PARATOOL")
CATEGORIES=(multiple parallel_multiple)
STORE="$WORK/store"
mkdir -p "$WORK/subset/possible_answer" "$RESULTS"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$(date +%s)

# 1. The subset: the first N questions of each category and their gold answers.
for c in "${CATEGORIES[@]}"; do
  head -n "$N" "$BFCL/BFCL_v4_$c.json" | awk 1 > "$WORK/subset/BFCL_v4_$c.json"
  head -n "$N" "$BFCL/possible_answer/BFCL_v4_$c.json" | awk 1 > "$WORK/subset/possible_answer/BFCL_v4_$c.json"
done
# The tools: the union of the subset questions' function lists (a JSONL question file is a catalogue).
cat "$WORK/subset/BFCL_v4_multiple.json" "$WORK/subset/BFCL_v4_parallel_multiple.json" > "$WORK/tools.jsonl"
HELD_OUT=()
for f in "$BFCL"/BFCL_v4_*.json; do HELD_OUT+=(--held-out "$f"); done
log "subset: first $N questions of ${CATEGORIES[*]}; $(wc -l < "$WORK/tools.jsonl") question lines in $WORK/tools.jsonl"

# 2. Training data: synthesized from the tools' schemas, no BFCL question among them.
if [[ ! -s "$WORK/train.jsonl" ]]; then
  "${P[@]}" synth --tools "$WORK/tools.jsonl" --out "$WORK/train.jsonl" --per-tool "$PER_TOOL" --seed 0 "${HELD_OUT[@]}"
else
  log "synthesis: $WORK/train.jsonl exists, kept"
fi

# 3. Stages 1, 2, 3 and the Global Parameterization baseline (checkpointed; --resume skips finished jobs).
train_start=$(date +%s)
"${P[@]}" train --offline "${MODEL_ARGS[@]}" --data "$WORK/train.jsonl" --tools "$WORK/tools.jsonl" --out "$STORE" \
  --stages 1,2,3 --global --resume --steps "$STEPS" --joint-steps "$JOINT_STEPS" --gate-steps "$GATE_STEPS" \
  --lr "$LR" --warmup "$WARMUP" --metrics "$WORK/metrics.jsonl" "${HELD_OUT[@]}"
train_end=$(date +%s)
log "training (this run): $((train_end - train_start)) s"

# 4. Every mode on each category's subset (a category whose table exists is not evaluated again).
for c in "${CATEGORIES[@]}"; do
  if [[ -s "$RESULTS/bfcl_${c}_table.md" && "$(cat "$WORK/evaluated_$c" 2>/dev/null)" == "$N $STEPS $MODES" ]]; then
    log "eval $c: done before, kept $RESULTS/bfcl_${c}_table.md"
    continue
  fi
  "${P[@]}" eval "${MODEL_ARGS[@]}" --data "$WORK/subset/BFCL_v4_$c.json" --answers "$WORK/subset/possible_answer/BFCL_v4_$c.json" \
    --mode "$MODES" --adapter-store "$STORE" --out "$RESULTS" --max-new-tokens "$MAX_NEW_TOKENS" "${HELD_OUT[@]}" > "$WORK/eval_$c.txt"
  echo "$N $STEPS $MODES" > "$WORK/evaluated_$c"
done

end=$(date +%s)
echo
echo "BFCL experiment: first $N questions of ${CATEGORIES[*]}, $STEPS steps per tool, $PER_TOOL examples per tool"
echo "wall time of this run: $((end - start)) s (training $((train_end - train_start)) s)"
for c in "${CATEGORIES[@]}"; do
  echo
  cat "$WORK/eval_$c.txt"
done
echo
echo "trained store: $(cd "$STORE" && pwd) ($(du -sh "$STORE" | cut -f1) with checkpoints; adapters $(du -sh --exclude=.checkpoints "$STORE" | cut -f1))"
echo "decoded calls (BFCL result format): $RESULTS/bfcl_<category>_<mode>.jsonl"
exit
}
