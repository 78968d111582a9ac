#!/usr/bin/env python3
"""Images/s of one WRN training step and one distillation step in PyTorch on the CPU: the reference point of
`cheapconv bench step` (issue 4). Same models as tests/fixtures/make_fixtures.py (imported from there), same
steps as the C# command: random 1x32x32 inputs, 10 classes, batch 128; after one warm-up step, the median of
--steps steps, then the peak resident memory of the process.

  train:   student forward (train mode), cross-entropy, backward, SGD (lr 0.1, momentum 0.9, wd 5e-4)
  distill: teacher forward in eval mode without gradients, student forward and backward,
           CE + AT (alpha = 0, beta = 1e3), SGD

With --ops, the timed steps run under torch.autograd.profiler and the table of PyTorch's own ops (self CPU time, the
slowest first) follows, beside which `cheapconv bench step --ops` prints CheapConv's.

Run with the system interpreter (Debian's python3-torch): /usr/bin/python3 bench/cpu/torch_step.py --threads 2
"""

import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures"))
from make_fixtures import WideResNet, at_loss  # noqa: E402  (the fixture models: one definition of the networks)


def parse_arch(arch):
    parts = arch.lower().split("-")
    if len(parts) != 3 or parts[0] != "wrn":
        raise SystemExit(f"error: unknown architecture '{arch}'; expected wrn-<depth>-<width>, e.g. wrn-40-2")
    return int(parts[1]), int(parts[2])


def block_code(block):
    """The C# spellings G(4) / G4 / S map to the fixture script's unit codes (G4, S, B2, ...)."""
    return block.replace("(", "").replace(")", "").replace(",", "-").replace("N/", "N")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="wrn-40-2")
    parser.add_argument("--block", default="S", help="student unit, e.g. S, G4, B2")
    parser.add_argument("--block-type", default=None, choices=[None, "basic", "bottle"])
    parser.add_argument("--teacher-arch", default=None)
    parser.add_argument("--mode", default="train", choices=["train", "distill"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--image", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ops", action="store_true", help="profile the timed steps and print the time per op")
    args = parser.parse_args()
    if args.batch < 2 or args.steps < 1:
        raise SystemExit("error: --batch must be at least 2 and --steps at least 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    depth, width = parse_arch(args.arch)
    unit = block_code(args.block)
    block_type = args.block_type or ("bottle" if unit.startswith("B") else "basic")
    student = WideResNet(depth, width, unit, block_type, args.in_channels, args.classes, args.image)
    student.train()
    teacher = None
    if args.mode == "distill":
        t_depth, t_width = parse_arch(args.teacher_arch or args.arch)
        teacher = WideResNet(t_depth, t_width, "S", "basic", args.in_channels, args.classes, args.image)
        teacher.eval()
    optimiser = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(args.batch, args.in_channels, args.image, args.image) * 2 - 1
    labels = torch.randint(0, args.classes, (args.batch,))

    def step():
        start = time.perf_counter()
        if teacher is None:
            logits, _ = student(x)
            loss = F.cross_entropy(logits, labels)
        else:
            with torch.no_grad():
                _, t_groups = teacher(x)
            logits, s_groups = student(x)
            loss = F.cross_entropy(logits, labels) + 1e3 * sum(at_loss(s, t) for s, t in zip(s_groups, t_groups))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        loss.item()
        return time.perf_counter() - start

    what = (f"train step: WRN-{depth}-{width} {args.block} {block_type}" if teacher is None else
            f"distill step: {args.teacher_arch or args.arch} S -> WRN-{depth}-{width} {args.block} {block_type} (CE + AT, beta 1e3)")
    print(f"{what}, {args.in_channels}x{args.image}x{args.image}, batch {args.batch}, "
          f"PyTorch {torch.__version__} on the CPU, {torch.get_num_threads()} threads")
    print(f"warm-up: {step() * 1e3:.0f} ms")
    times = []
    with torch.autograd.profiler.profile(enabled=args.ops) as profile:
        for i in range(args.steps):
            times.append(step())
            print(f"step {i + 1}: {times[-1] * 1e3:.0f} ms")
    if args.ops:
        # The profiler's own overhead is inside these steps' times: the median below is of profiled steps.
        print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    median = statistics.median(times)
    print(f"median {median * 1e3:.1f} ms per step (min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}) "
          f"= {args.batch / median:.1f} images/s")
    # The process's high-water mark of resident memory (ru_maxrss is in KiB on Linux), as `cheapconv bench step` prints it.
    print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
