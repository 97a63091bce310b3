#!/usr/bin/env python3
# Owns bfcl_rescore.py: re-scoring our BFCL result files (bfcl_<category>_<mode>.jsonl, BFCL's
# result format) with BFCL's own AST checker from the PyPI package bfcl-eval, as a cross-check of
# the Swift BFCLChecker; prints a Markdown table (category | mode | questions | correct | accuracy).
#
# Install (BFCL's checker, and the one package beyond the standard library that the modules used
# here import):
#   pip install --no-deps bfcl-eval==2026.3.23 filelock==3.20.0
# (the wheel file works as well: pip install --no-deps bfcl_eval-2026.3.23-py3-none-any.whl)
#
# ast_checker imports bfcl_eval.constants.model_config for one lookup only,
# MODEL_CONFIG_MAPPING[model].underscore_to_dot (in convert_func_name), and that module imports every
# model handler (openai, anthropic, cohere, mistralai, google-genai, boto3, qwen-agent, tree-sitter,
# ...). Without those installed, a stand-in module holding only our model's entry takes its place;
# the checking code that runs is BFCL's, unchanged.
#
# Usage: python3 Benchmarks/bfcl_rescore.py [--results DIR] [--bfcl DIR] [--categories C ...]
#        [--modes M ...] [--details] [--check]
# Result files in subdirectories of --results (e.g. one-mixture/, an ablation's run) are scored
# too, each against the table in its own directory.
# --check: also compare each count with the "correct" column of the Swift evaluation's own
# bfcl_<category>_table.md beside the result files, and exit 1 where they differ (CI runs this).
import argparse
import json
import sys
import types
from pathlib import Path

MODEL = "paratool"  # the model name handed to the checker; our calls keep "." in function names
try:
    from bfcl_eval.constants import model_config
except ImportError:  # the handlers' dependencies are missing: stand in for the registry
    model_config = types.ModuleType("bfcl_eval.constants.model_config")
    model_config.MODEL_CONFIG_MAPPING = {}
    sys.modules["bfcl_eval.constants.model_config"] = model_config
model_config.MODEL_CONFIG_MAPPING[MODEL] = types.SimpleNamespace(underscore_to_dot=False)

from bfcl_eval.constants.enums import Language  # noqa: E402
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker  # noqa: E402
from bfcl_eval.utils import is_empty_output, is_function_calling_format_output  # noqa: E402


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check(question, answer, result, category):
    """BFCL's verdict on one result, as its ast_file_runner gives it for a Python AST category.
    BFCL first decodes the raw output with the model's handler; our files hold the decoded form
    already, so what is not a list of {func: {arg: value}} (e.g. text) fails BFCL's format check.
    irrelevance has no gold answers: BFCL's relevance runner counts an answer correct when it holds
    no call (is_empty_output of the decoded result)."""
    if "irrelevance" in category:
        if is_empty_output(result):
            return {"valid": True}
        return {"valid": False, "error_type": "irrelevance_error:decoder_success",
                "error": ["Valid syntax. Successfully decode AST when it should not."]}
    if not is_function_calling_format_output(result):
        return {"valid": False, "error_type": "ast_decoder:decoder_wrong_output_format",
                "error": ["Did not output in the specified format."]}
    return ast_checker(question["function"], result, answer["ground_truth"], Language.PYTHON, category, MODEL)


def main():
    p = argparse.ArgumentParser(description="Re-score BFCL result files with BFCL's own AST checker.")
    p.add_argument("--results", type=Path, default=Path("Benchmarks/results"))
    p.add_argument("--bfcl", type=Path, default=Path("Tests/Fixtures/bfcl"))
    p.add_argument("--categories", nargs="*", help="only these categories (e.g. multiple parallel)")
    p.add_argument("--modes", nargs="*", help="only these modes (e.g. paratool context-docs)")
    p.add_argument("--details", action="store_true", help="also list each wrong answer with BFCL's error")
    p.add_argument("--check", action="store_true",
                   help="exit 1 unless every count equals the one in the Swift evaluation's bfcl_<category>_table.md")
    args = p.parse_args()

    categories = sorted((f.name[len("BFCL_v4_"):-len(".json")] for f in args.bfcl.glob("BFCL_v4_*.json")),
                        key=len, reverse=True)  # longest first: parallel_multiple before parallel
    rows, notes, data = [], [], {}
    for path in sorted(args.results.rglob("bfcl_*.jsonl")):
        stem = path.stem[len("bfcl_"):]
        category = next((c for c in categories if stem.startswith(c + "_")), None)
        if category is None:
            notes.append(f"{path.name}: no question file BFCL_v4_<category>.json in {args.bfcl} for it; skipped")
            continue
        mode = stem[len(category) + 1:]
        if (args.categories and category not in args.categories) or (args.modes and mode not in args.modes):
            continue
        if category not in data:
            questions = read_jsonl(args.bfcl / f"BFCL_v4_{category}.json")
            answer_file = args.bfcl / "possible_answer" / f"BFCL_v4_{category}.json"
            # irrelevance has no possible_answer file: every question's gold is "no call".
            answers = read_jsonl(answer_file) if answer_file.exists() else [{"id": q["id"]} for q in questions]
            # BFCL pairs questions and gold answers by position in the two files; the ids agree here.
            assert [q["id"] for q in questions] == [a["id"] for a in answers], f"{category}: files out of step"
            data[category] = ([q["id"] for q in questions], {q["id"]: (q, a) for q, a in zip(questions, answers)})
        order, by_id = data[category]

        entries, seen = [], set()
        for entry in read_jsonl(path):
            if entry["id"] not in by_id:
                notes.append(f"{path.name}: {entry['id']} is no question of {category}; not scored")
            elif entry["id"] in seen:
                notes.append(f"{path.name}: {entry['id']} appears again; only its first line is scored")
            else:
                seen.add(entry["id"])
                entries.append(entry)
        # The subset is the category's first N questions, N reaching the last id present.
        position = {qid: i for i, qid in enumerate(order)}
        n = max((position[e["id"]] + 1 for e in entries), default=0)
        missing = [i for i in order[:n] if i not in seen]
        if missing:
            notes.append(f"{path.name}: {len(entries)} of the first {n} questions of {category} present; "
                         f"missing {len(missing)}: {', '.join(missing)}")

        correct = 0
        for entry in entries:
            question, answer = by_id[entry["id"]]
            verdict = check(question, answer, entry["result"], category)
            correct += bool(verdict["valid"])
            if args.details and not verdict["valid"]:
                notes.append(f"{path.name}: {entry['id']} wrong, {verdict['error_type']}: "
                             f"{json.dumps(verdict['error'], ensure_ascii=False)[:300]}")
        rows.append((path.parent, category, mode, len(entries), correct))

    print("| category | mode | questions | correct by BFCL's checker | accuracy |")
    print("|---|---|---:|---:|---:|")
    for directory, category, mode, count, correct in rows:
        accuracy = f"{100 * correct / count:.1f}%" if count else "n/a"
        where = "" if directory == args.results else f"{directory.relative_to(args.results)}/"
        print(f"| {category} | {where}{mode} | {count} | {correct}/{count} | {accuracy} |")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    if args.check:
        disagreements = compare_with_tables(rows)
        for line in disagreements:
            print(f"DISAGREES: {line}")
        if disagreements:
            return 1
        print(f"\nBFCL's checker and the Swift evaluation's tables agree on all {len(rows)} result files.")
    return 0


def compare_with_tables(rows):
    """Differences between BFCL's counts and the `correct` column (k/n) of each category's table
    in the result file's directory (the first row naming the mode: the paired comparisons below
    the table name baselines in their first column too)."""
    out = []
    for directory, category, mode, count, correct in rows:
        table = directory / f"bfcl_{category}_table.md"
        if not table.exists():
            out.append(f"{category} {mode}: no {table.name} to compare with")
            continue
        cells = next((line.strip().strip("|").split("|") for line in table.read_text(encoding="utf-8").splitlines()
                      if line.startswith("|") and line.strip("| ").split("|")[0].strip() == mode), None)
        if cells is None:
            out.append(f"{category} {mode}: not in {table.name}")
        elif cells[2].strip() != f"{correct}/{count}":
            out.append(f"{category} {mode}: BFCL's checker {correct}/{count}, {table.name} {cells[2].strip()}")
    return out


if __name__ == "__main__":
    sys.exit(main())
