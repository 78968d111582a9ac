#!/usr/bin/env python3
"""Modelled vs measured: joins `cheapconv profile --catalogue --json` (the roofline model of the GPU) with the Markdown
table of `cheapconv bench conv` (CUDA events, L2 flushed) on the same catalogue, per problem and pass, and writes the
calibration table to a Markdown file. Run by bench.sh on a GPU machine; the standard library only.

usage: calibrate.py PROFILE_JSON BENCH_MD OUT_MD [--gpu NAME] [--commit SHA]
"""
import argparse
import json
import statistics
import sys


def bench_rows(path):
    """(problem tuple, pass) -> median µs from bench conv's table: '| N C H W K R S stride pad groups | pass | median µs | ...'."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 3 or not cells[0][:1].isdigit():
                continue
            problem = tuple(int(v) for v in cells[0].split())
            rows[(problem, cells[1].replace("-", "_"))] = float(cells[2])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("bench")
    parser.add_argument("out")
    parser.add_argument("--gpu", default="unknown GPU")
    parser.add_argument("--commit", default="unknown")
    args = parser.parse_args()

    with open(args.profile, encoding="utf-8") as f:
        profile = json.load(f)
    measured = bench_rows(args.bench)
    lines = [
        f"# Roofline model vs measurement: {args.gpu}",
        "",
        f"Commit {args.commit}. Modelled: `cheapconv profile --catalogue --json` (the emulator's traffic, the GPU model);",
        "measured: `cheapconv bench conv` (median, CUDA events, L2 flushed before each run). ratio = measured / modelled:",
        "above 1 the model is optimistic for that kernel, below 1 pessimistic (e.g. L1 hits it does not model).",
        "",
        "| N C H W K R S stride pad groups | pass | kernels | measured µs | modelled µs | ratio | roofline µs | bound (model) |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    ratios = {}
    missing = 0
    for row in profile:
        problem = tuple(row[k] for k in ("n", "c", "h", "w", "k", "r", "s", "stride", "pad", "groups"))
        us = measured.get((problem, row["pass"]))
        if us is None:
            missing += 1
            continue
        ratio = us / row["modelled_us"]
        kernels = "+".join(k.removeprefix("cc_").removesuffix("_kernel") for k in row["kernels"])
        ratios.setdefault(row["kernels"][0], []).append(ratio)
        lines.append(f"| {' '.join(map(str, problem))} | {row['pass']} | {kernels} | {us:.1f} | {row['modelled_us']:.1f} | "
                     f"{ratio:.2f} | {row['roofline_us']:.1f} | {row['bound']} |")
    lines += ["", "| main kernel | passes | median ratio | min | max |", "|---|---:|---:|---:|---:|"]
    for kernel, values in sorted(ratios.items()):
        lines.append(f"| {kernel} | {len(values)} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    if missing:
        lines += ["", f"{missing} profiled passes had no measurement in {args.bench}."]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"calibrate.py: {sum(len(v) for v in ratios.values())} passes joined, written to {args.out}")
    return 0 if ratios else 1


if __name__ == "__main__":
    sys.exit(main())
