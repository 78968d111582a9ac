#!/usr/bin/env python3
"""Side by side: the modelled time of each pass under several kernel variants, from `profile --catalogue --json` files.

    variants.py auto=auto.json tiled=tiled.json implicit-gemm=ig.json

Prints a Markdown table (one row per problem x pass: each variant's modelled us, the fastest, what AUTO ran) and the
sums per pass. A pass a forced variant does not implement shows as "-". Used for the evidence behind CC_ALGO_AUTO's
choices (bench/results/profile-*-grouped-choice.md).
"""
import json
import sys


def key(row):
    return tuple(row[f] for f in ("n", "c", "h", "w", "k", "r", "s", "stride", "pad", "groups", "pass"))


def main(args):
    if len(args) < 2 or any("=" not in a for a in args):
        sys.exit("usage: variants.py NAME=profile.json NAME=profile.json ... (at least two)")
    variants = {}
    for arg in args:
        name, path = arg.split("=", 1)
        with open(path, encoding="utf-8") as f:
            variants[name] = {key(r): r for r in json.load(f)}
    names = list(variants)
    order = list(next(iter(variants.values())))
    print("| N C H W K R S stride pad groups | per group | pass | " + " | ".join(f"{n} µs" for n in names) + " | fastest | kernels of " + names[0] + " |")
    print("|---|---:|---|" + "---:|" * len(names) + "---|---|")
    sums = {}
    for k in order:
        rows = [variants[n].get(k) for n in names]
        times = [r.get("modelled_us") if r else None for r in rows]
        known = [(t, n) for t, n in zip(times, names) if t is not None]
        fastest = min(known)[1] if known else "-"
        problem = " ".join(str(v) for v in k[:10])
        per_group = f"{k[1] // k[9]}→{k[4] // k[9]}"
        first = rows[0]
        kernels = "+".join(first.get("kernels", [])) if first else "-"
        cells = " | ".join("-" if t is None else f"{t:.1f}" for t in times)
        print(f"| {problem} | {per_group} | {k[10]} | {cells} | {fastest} | {kernels} |")
        for n, t in zip(names, times):
            if t is not None:
                sums.setdefault((k[10], n), 0.0)
                sums[(k[10], n)] += t
    print()
    for p in ("forward", "backward_data", "backward_weight"):
        parts = [f"{n} {sums[(p, n)]:.1f} µs" for n in names if (p, n) in sums]
        print(f"- {p}: Σ " + ", ".join(parts))


if __name__ == "__main__":
    main(sys.argv[1:])
