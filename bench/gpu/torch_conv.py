#!/usr/bin/env python3
"""PyTorch side of the conv benchmark: times the same catalogue problems as `cheapconv bench conv` with
PyTorch's own kernels (cuDNN on a GPU), so the two tables can be read side by side.

    python3 bench/gpu/torch_conv.py --device cuda --out bench/results/torch-conv.md
    python3 bench/gpu/torch_conv.py --device cpu --batch 8 --catalogue shapes/rigorous.txt

The three passes are aten's own: convolution (forward) and convolution_backward with only the input or
only the weight gradient requested — what autograd runs. fp32 throughout: TF32 tensor cores are off
unless --tf32 is given, so the comparison with our fp32 kernels is fair. On a GPU the L2 cache is flushed
before every timed run (every CIFAR-sized tensor fits in it) and cuDNN picks its algorithm once per
problem (cudnn.benchmark) before timing.
"""
import argparse
import datetime
import os
import statistics
import sys
import time


def load_catalogue(path):
    problems = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("N C H"):
                continue
            fields = line.split("|")[0].split()
            if len(fields) != 10:
                sys.exit(f"{path}:{number}: expected 10 numbers 'N C H W K R S stride pad groups'")
            problems.append([int(v) for v in fields])
    return problems


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogue", action="append",
                        help="shape catalogue(s); default shapes/wrn40-2-moonshine.txt")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--batch", type=int, help="replace every problem's batch size")
    parser.add_argument("--repeats", type=int, default=0, help="timed runs per pass (default 20 on cuda, 3 on cpu)")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 tensor cores in cuDNN convolutions")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    args = parser.parse_args()

    import torch  # imported late so --help works without PyTorch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_conv.py: PyTorch sees no CUDA device (use --device cpu)")
    if args.batch is not None and args.batch <= 0:
        sys.exit("torch_conv.py: --batch must be positive")
    device = torch.device(args.device)
    repeats = args.repeats or (20 if args.device == "cuda" else 3)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32

    catalogues = args.catalogue or [os.path.join(root, "shapes", "wrn40-2-moonshine.txt")]
    problems = [p for path in catalogues for p in load_catalogue(path)]

    if args.device == "cuda":
        name = torch.cuda.get_device_name(0)
        label = f"{name}, PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, tf32 {'on' if args.tf32 else 'off'}"
        flush = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    else:
        label = f"cpu, PyTorch {torch.__version__}, {torch.get_num_threads()} threads"
        flush = None

    def timed(fn):
        fn()  # warm-up; with cudnn.benchmark this also picks the algorithm
        times = []
        for i in range(repeats):
            if flush is not None:
                flush.fill_(i & 0xFF)
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                stop.record()
                stop.synchronize()
                times.append(start.elapsed_time(stop) * 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e6)
        return statistics.median(times), min(times)

    lines = [f"# conv benchmark: {label}", "",
             f"Date {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; median of {repeats} runs"
             + ("; L2 flushed before each run." if flush is not None else "."), "",
             "| problem (N C H W K R S stride pad groups) | pass | median µs | min µs | GFLOP/s | GB/s |",
             "|---|---|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    aten = torch.ops.aten
    for n, c, h, w, k, r, s, stride, pad, groups in problems:
        if args.batch:
            n = args.batch
        x = torch.rand(n, c, h, w, device=device) * 2 - 1
        weight = torch.rand(k, c // groups, r, s, device=device) * 2 - 1
        y = torch.nn.functional.conv2d(x, weight, stride=stride, padding=pad, groups=groups)
        dy = torch.rand_like(y) * 2 - 1
        p, q = y.shape[2], y.shape[3]
        macs = n * k * p * q * (c // groups) * r * s
        elements = {"x": x.numel(), "w": weight.numel(), "y": y.numel()}
        conv_args = ([stride, stride], [pad, pad], [1, 1], False, [0, 0], groups)
        passes = [
            ("forward", lambda: aten.convolution(x, weight, None, *conv_args)),
            ("backward-data", lambda: aten.convolution_backward(dy, x, weight, None, *conv_args, [True, False, False])),
            ("backward-weight", lambda: aten.convolution_backward(dy, x, weight, None, *conv_args, [False, True, False])),
        ]
        for name, fn in passes:
            median, fastest = timed(fn)
            traffic = 4 * (elements["x"] + elements["w"] + elements["y"])
            line = (f"| {n} {c} {h} {w} {k} {r} {s} {stride} {pad} {groups} | {name} | {median:.1f} | {fastest:.1f} | "
                    f"{2 * macs / median * 1e-3:.1f} | {traffic / median * 1e-3:.1f} |")
            lines.append(line)
            print(line, flush=True)

    if args.out:
        temporary = args.out + ".tmp"
        with open(temporary, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(temporary, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
