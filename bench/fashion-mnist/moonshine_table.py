#!/usr/bin/env python3
"""The Moonshine summary from `report`'s report.csv: one row per unit and mode (AT / alone) with params, state-dict size,
MACs, CPU latency at batch 1 and 128 (the median over the seeds' runs), and best and last test error as the mean over
the seeds with their spread (half the range, min to max). The teacher's row is its own run. Markdown on stdout."""
import csv
import re
import statistics
import sys
from collections import OrderedDict


def main(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    groups = OrderedDict()
    for r in rows:
        # The students' runs are named ...-UNIT-MODE-seedN (moonshine.sh): the seeds of one unit and mode go together.
        # Any other run (the teacher) is a row of its own.
        groups.setdefault(re.sub(r"-seed\d+$", "", r["run"]), []).append(r)
    print("| run | unit | type | mode | seeds | params | sd | MACs | latency b1 (ms) | latency b128 (ms) | best err % (mean ± half range) | last err % (mean ± half range) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, runs in groups.items():
        def spread(field):
            values = [float(r[field]) for r in runs if r[field]]
            if not values:
                return "—"
            mean = statistics.fmean(values)
            return f"{mean:.2f} ± {(max(values) - min(values)) / 2:.2f}" if len(values) > 1 else f"{mean:.2f}"

        def median(field):
            values = [float(r[field]) for r in runs if r[field]]
            return f"{statistics.median(values):.2f}" if values else "—"

        first = runs[0]
        seeds = ",".join(sorted({r["seed"] for r in runs}))
        print(f"| {name} | {first['block']} | {first['block_type']} | {first['mode']} | {seeds} | {int(first['params']):,} | {int(first['state']):,} | "
              f"{int(first['macs']) / 1e6:.1f}M | {median('latency_small_ms')} | {median('latency_large_ms')} | "
              f"{spread('best_error_percent')} | {spread('last_error_percent')} |")
    print()
    print("Best error is the best epoch's (chosen on the test set, so optimistic); last error the last epoch's. The latency is")
    print("`report`'s: the median wall time of eval-mode forward passes on the device above.")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: moonshine_table.py report.csv")
    main(sys.argv[1])
