#!/usr/bin/env python3
"""The C# CPU backend beside PyTorch on the CPU, in one run (issue 13): `cheapconv bench step` and torch_step.py on the
same steps, interleaved A B A B ... so that both see the same machine, each pair's order alternating. Per row: the median
step time of each side over its runs (each run itself reports the median of --steps steps after a warm-up), the ratio
PyTorch / C# (above 1: C# is faster), and each side's peak resident memory (the largest ru_maxrss of its runs, from
wait4, so the whole process: runtime, models, data, scratch). Prints a Markdown table with the machine and the commands.

Rows (as the issue asks): train WRN-40-2; distill WRN-40-2 -> G(4), -> DW (G(N)), -> B(2).

Run from the repository root with the system interpreter (Debian's python3-torch), on a machine doing nothing else:
  dotnet build src/CheapConv.Cli -c Release
  /usr/bin/python3 bench/cpu/side_by_side.py [--pairs 4] [--steps 3] [--threads 2] [--rows train,G4,DW,B2]
"""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.path.join(ROOT, "src", "CheapConv.Cli", "bin", "Release", "net10.0", "CheapConv.Cli.dll")
TORCH_STEP = os.path.join(ROOT, "bench", "cpu", "torch_step.py")
MEDIAN = re.compile(r"^median ([0-9.]+) ms per step", re.MULTILINE)

# name -> (mode, student block, student block type or None)
ROWS = {
    "train": ("train", "S", None),
    "G4": ("distill", "G4", None),
    "DW": ("distill", "DW", None),
    "B2": ("distill", "B2", None),
}


def commands(row, args):
    mode, block, block_type = ROWS[row]
    common = ["--arch", "wrn-40-2", "--block", block, "--mode", mode, "--steps", str(args.steps)]
    if mode == "distill":
        common += ["--teacher-arch", "wrn-40-2"]
    if block_type:
        common += ["--block-type", block_type]
    # bench step's CPU backend runs on Environment.ProcessorCount threads, which DOTNET_PROCESSOR_COUNT sets (run()).
    csharp = ["dotnet", CLI, "bench", "step", *common, "--device", "cpu"]
    torch = [sys.executable, TORCH_STEP, *common, "--threads", str(args.threads)]
    return csharp, torch


def run(command, threads):
    """Runs one benchmark process; returns (median step seconds, peak resident bytes) or exits with its output."""
    environment = dict(os.environ, DOTNET_PROCESSOR_COUNT=str(threads))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=environment)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    match = MEDIAN.search(output)
    if process.returncode != 0 or match is None:
        raise SystemExit(f"error: {' '.join(command)} exited {process.returncode}:\n{output}")
    return float(match.group(1)) / 1e3, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="interleaved runs of each side per row")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of " + ", ".join(ROWS))
    args = parser.parse_args()
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = [row for row in rows if row not in ROWS]
    if unknown or args.pairs < 1 or args.steps < 1 or args.threads < 1:
        raise SystemExit(f"error: rows must be among {', '.join(ROWS)} (got {', '.join(unknown) or 'none unknown'}); "
                         "--pairs, --steps and --threads must be positive")
    if not os.path.exists(CLI):
        raise SystemExit(f"error: {CLI} does not exist: run 'dotnet build src/CheapConv.Cli -c Release' first")

    print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {args.threads} threads per side; "
          f"{args.pairs} interleaved pairs per row, {args.steps} timed steps per run; batch 128, 1x32x32, 10 classes\n")
    print("| row | C# ms/step (median) | PyTorch ms/step (median) | PyTorch / C# | C# peak RSS MiB | PyTorch peak RSS MiB | C# / PyTorch memory |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        csharp, torch = commands(row, args)
        times = {"csharp": [], "torch": []}
        peaks = {"csharp": 0, "torch": 0}
        for pair in range(args.pairs):
            # A B, then B A: neither side always runs on the machine the other just warmed.
            order = [("csharp", csharp), ("torch", torch)] if pair % 2 == 0 else [("torch", torch), ("csharp", csharp)]
            for side, command in order:
                seconds, peak = run(command, args.threads)
                times[side].append(seconds)
                peaks[side] = max(peaks[side], peak)
        c, t = statistics.median(times["csharp"]), statistics.median(times["torch"])
        mib = 1024 * 1024
        print(f"| {row} | {c * 1e3:.0f} | {t * 1e3:.0f} | {t / c:.2f} | {peaks['csharp'] / mib:.0f} | {peaks['torch'] / mib:.0f} | "
              f"{peaks['csharp'] / peaks['torch']:.2f} |", flush=True)

    print("\ncommands (per row, A = C#, B = PyTorch):")
    for row in rows:
        csharp, torch = commands(row, args)
        print(f"- {row}: A `DOTNET_PROCESSOR_COUNT={args.threads} dotnet {' '.join(csharp[1:]).replace(ROOT + os.sep, '')}`; B `{' '.join(['/usr/bin/python3', *torch[1:]]).replace(ROOT + os.sep, '')}`")


if __name__ == "__main__":
    main()
