#!/usr/bin/env bash
# The BFCL experiment: parameterise the tools of the first N questions of BFCL `multiple`,
# `parallel`, `parallel_multiple` and `irrelevance`, train them on examples synthesized from their
# schemas only (every BFCL question of every category held out), and evaluate every mode on those
# questions, constrained to the call grammar, plus paratool and context-docs without the
# constraint, and the calls-decided-one-by-one ablation (paratool and oracle with one mixture for
# the whole answer, `--call-steps off`) on the categories that ask for several calls.
# Resumable at the step it reached: rerun the same command after an interruption; finished
# synthesis, training jobs (checkpoints, --resume) and evaluated categories are skipped, and an
# interrupted evaluation goes on from its last answered question (`eval --resume-from`). Each
# sitting's wall time is appended to $WORK/sittings.txt; the total is printed at the end.
#
# Usage (from the repository root), in the background:
#   nohup Benchmarks/bfcl_experiment.sh > Benchmarks/work/bfcl-N50.log 2>&1 &
# Settings (environment variables, defaults in brackets):
#   N [50]              questions per category (the first N of each file)
#   CATEGORIES ["multiple parallel parallel_multiple irrelevance"]
#   PER_TOOL [16]       synthesized atomic examples per tool (plus parallel requests and episodes)
#   GLOBAL_STEPS [500]  steps of the Global Parameterization adapter, which is also every tool's
#                       starting point when INIT=global
#   INIT [global]       stage 1 starts from the global adapter (global) or the shared random one (random)
#   STEPS [8]           stage-1 steps per tool      TOOLS_PER_STEP [4]  tools trained together per step
#   BATCH [1]           sequences per step          JOINT_STEPS [40]    GATE_STEPS [300]
#   LR [1e-3]  WARMUP [8]  MAX_NEW_TOKENS [256]  MODES [all, plus paratool and context-docs unconstrained]
#   NAME_PRIOR [0]      eval --name-prior           MODEL [the default SmolLM2 GGUF]
#   WORK [Benchmarks/work/bfcl-N<N>]  RESULTS [Benchmarks/results]  BFCL [Tests/Fixtures/bfcl]
#   PARATOOL [a release build of this package]
set -euo pipefail
# The whole script is one block, read before it runs, so editing this file mid-run cannot derail it.
{
cd "$(dirname "$0")/.."

N=${N:-50}
read -r -a CATEGORIES <<< "${CATEGORIES:-multiple parallel parallel_multiple irrelevance}"
PER_TOOL=${PER_TOOL:-16}
GLOBAL_STEPS=${GLOBAL_STEPS:-500}
INIT=${INIT:-global}
STEPS=${STEPS:-8}
TOOLS_PER_STEP=${TOOLS_PER_STEP:-4}
BATCH=${BATCH:-1}
JOINT_STEPS=${JOINT_STEPS:-40}
GATE_STEPS=${GATE_STEPS:-300}
LR=${LR:-1e-3}
WARMUP=${WARMUP:-8}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-256}
NAME_PRIOR=${NAME_PRIOR:-0}
MODES=${MODES:-paratool,context-docs,context-docs-examples,global,average,top1,oracle,no-finetune,embsim,paratool-unconstrained,context-docs-unconstrained}
BFCL=${BFCL:-Tests/Fixtures/bfcl}
WORK=${WORK:-Benchmarks/work/bfcl-N${N}}
RESULTS=${RESULTS:-Benchmarks/results}
MODEL_ARGS=()
if [[ -n "${MODEL:-}" ]]; then MODEL_ARGS=(--model "$MODEL"); fi

mkdir -p "$WORK/subset/possible_answer" "$WORK/bin" "$RESULTS"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# The binary runs from a copy in $WORK, so rebuilding the package mid-run cannot change the code
# under measurement; the commit it was built from is logged.
if [[ -z "${PARATOOL:-}" ]]; then
  nice -n 10 swift build -c release --product paratool >&2
  cp "$(swift build -c release --show-bin-path)/paratool" "$WORK/bin/paratool.new"
  mv "$WORK/bin/paratool.new" "$WORK/bin/paratool"
  PARATOOL="$WORK/bin/paratool"
fi
log "binary $PARATOOL, built from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources || echo ' with local changes')"
P=(nice -n 10 "$PARATOOL")
STORE="$WORK/store"
start=$(date +%s)
phase() { # name, seconds: the time a finished phase took in this sitting
  echo "$1 $2" >> "$WORK/phases.txt"
}
trap 'echo "$(( $(date +%s) - start ))" >> "$WORK/sittings.txt"' EXIT

# 1. The subset: the first N questions of each category and their gold answers.
for c in "${CATEGORIES[@]}"; do
  head -n "$N" "$BFCL/BFCL_v4_$c.json" | awk 1 > "$WORK/subset/BFCL_v4_$c.json"
  # irrelevance has no gold answers: correct there means no call.
  if [[ -e "$BFCL/possible_answer/BFCL_v4_$c.json" ]]; then
    head -n "$N" "$BFCL/possible_answer/BFCL_v4_$c.json" | awk 1 > "$WORK/subset/possible_answer/BFCL_v4_$c.json"
  fi
done
# The tools: the union of the subset questions' function lists (a JSONL question file is a catalogue).
: > "$WORK/tools.jsonl"
for c in "${CATEGORIES[@]}"; do cat "$WORK/subset/BFCL_v4_$c.json" >> "$WORK/tools.jsonl"; done
HELD_OUT=()
for f in "$BFCL"/BFCL_v4_*.json; do HELD_OUT+=(--held-out "$f"); done
log "subset: first $N questions of ${CATEGORIES[*]}; $(wc -l < "$WORK/tools.jsonl") question lines in $WORK/tools.jsonl"

# 2. Training data: synthesized from the tools' schemas, no BFCL question among them.
if [[ ! -s "$WORK/train.jsonl" ]]; then
  t0=$(date +%s)
  "${P[@]}" synth --tools "$WORK/tools.jsonl" --out "$WORK/train.jsonl" --per-tool "$PER_TOOL" --seed 0 "${HELD_OUT[@]}"
  phase synthesis $(( $(date +%s) - t0 ))
else
  log "synthesis: $WORK/train.jsonl exists, kept"
fi

# 3. The Global Parameterization adapter, stages 1, 2, 3 (checkpointed; --resume skips finished jobs).
if [[ ! -e "$WORK/trained" ]]; then
  t0=$(date +%s)
  "${P[@]}" train --offline "${MODEL_ARGS[@]}" --data "$WORK/train.jsonl" --tools "$WORK/tools.jsonl" --out "$STORE" \
    --stages 1,2,3 --global --global-steps "$GLOBAL_STEPS" --init "$INIT" --resume --steps "$STEPS" \
    --tools-per-step "$TOOLS_PER_STEP" --batch-size "$BATCH" --joint-steps "$JOINT_STEPS" --gate-steps "$GATE_STEPS" \
    --lr "$LR" --warmup "$WARMUP" --metrics "$WORK/metrics.jsonl" "${HELD_OUT[@]}"
  phase training $(( $(date +%s) - t0 ))
  touch "$WORK/trained"
else
  log "training: done before, kept $STORE"
fi

# 4. Every mode on each category's subset (a category whose table exists is not evaluated again;
#    an interrupted one goes on from the questions its journal in $WORK/eval-state holds).
evaluate() { # category, results directory, modes, journal directory, more eval options...
  local c=$1 out=$2 modes=$3 state=$4; shift 4
  local answers=()
  if [[ -e "$WORK/subset/possible_answer/BFCL_v4_$c.json" ]]; then answers=(--answers "$WORK/subset/possible_answer/BFCL_v4_$c.json"); fi
  "${P[@]}" eval "${MODEL_ARGS[@]}" --data "$WORK/subset/BFCL_v4_$c.json" "${answers[@]}" \
    --mode "$modes" --adapter-store "$STORE" --out "$out" --max-new-tokens "$MAX_NEW_TOKENS" --name-prior "$NAME_PRIOR" \
    --resume-from "$state" "$@" "${HELD_OUT[@]}"
}
publish_category() { # category, from, to, modes: the category's table and each mode's result file (skipped modes have none)
  local c=$1 from=$2 to=$3 m
  mkdir -p "$to"
  IFS=, read -r -a names <<< "$4"
  for m in "${names[@]}"; do
    if [[ -e "$from/bfcl_${c}_$m.jsonl" ]]; then cp "$from/bfcl_${c}_$m.jsonl" "$to/"; fi
  done
  cp "$from/bfcl_${c}_table.md" "$to/"
}
for c in "${CATEGORIES[@]}"; do
  if [[ -s "$RESULTS/bfcl_${c}_table.md" && "$(cat "$WORK/evaluated_$c" 2>/dev/null)" == "$N $MODES" ]]; then
    log "eval $c: done before, kept $RESULTS/bfcl_${c}_table.md"
  else
    t0=$(date +%s)
    log "eval $c: $N questions, modes $MODES"
    # Written beside the work first and copied when the whole category is done, so the committed
    # results never hold one category's files from two runs.
    evaluate "$c" "$WORK/results" "$MODES" "$WORK/eval-state" > "$WORK/eval_$c.txt"
    publish_category "$c" "$WORK/results" "$RESULTS" "$MODES"
    phase "eval_$c" $(( $(date +%s) - t0 ))
    echo "$N $MODES" > "$WORK/evaluated_$c"
  fi
  # The ablation of calls decided one by one: one mixture for the whole answer.
  if [[ "$c" == parallel || "$c" == parallel_multiple ]]; then
    if [[ -s "$RESULTS/one-mixture/bfcl_${c}_table.md" && "$(cat "$WORK/evaluated_one-mixture_$c" 2>/dev/null)" == "$N" ]]; then
      log "eval $c, one mixture: done before"
    else
      t0=$(date +%s)
      log "eval $c, one mixture for the whole answer (--call-steps off): paratool, oracle"
      evaluate "$c" "$WORK/results/one-mixture" paratool,oracle "$WORK/eval-state-one-mixture" --call-steps off > "$WORK/eval_one-mixture_$c.txt"
      publish_category "$c" "$WORK/results/one-mixture" "$RESULTS/one-mixture" paratool,oracle
      phase "eval_one-mixture_$c" $(( $(date +%s) - t0 ))
      echo "$N" > "$WORK/evaluated_one-mixture_$c"
    fi
  fi
done

echo
echo "BFCL experiment: first $N questions of ${CATEGORIES[*]}; $PER_TOOL examples per tool; global $GLOBAL_STEPS steps;"
echo "stage 1 $STEPS steps per tool from the $INIT start ($TOOLS_PER_STEP tools × $BATCH sequences a step); gate $GATE_STEPS; joint $JOINT_STEPS"
echo "phases (seconds, each counted in the sitting that finished it):"
sed 's/^/  /' "$WORK/phases.txt"
total=$(( $(awk '{s += $1} END {print s + 0}' "$WORK/sittings.txt" 2>/dev/null || echo 0) + $(date +%s) - start ))
echo "wall time of every sitting together: $total s"
for c in "${CATEGORIES[@]}"; do
  echo
  cat "$WORK/eval_$c.txt"
  if [[ -e "$WORK/eval_one-mixture_$c.txt" ]]; then echo; echo "one mixture for the whole answer:"; cat "$WORK/eval_one-mixture_$c.txt"; fi
done
echo
echo "trained store: $(cd "$STORE" && pwd) ($(du -sh "$STORE" | cut -f1) with checkpoints; adapters $(du -sh --exclude=.checkpoints "$STORE" | cut -f1))"
echo "decoded calls (BFCL result format): $RESULTS/bfcl_<category>_<mode>.jsonl"
exit
}
