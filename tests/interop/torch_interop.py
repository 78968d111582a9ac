#!/usr/bin/python3
"""Checkpoints between CheapConv and PyTorch, both ways, on the shared PyTorch definition (moonshine_torch.py).

CheapConv -> PyTorch: load a checkpoint (checkpoint.safetensors or best.safetensors of a run, or any state dict as
safetensors) into the PyTorch model and write its eval-mode logits on images given as a .npy (N x C x H x W float32,
normalised as in training):

    /usr/bin/python3 tests/interop/torch_interop.py to-torch --state runs/g4-at/best.safetensors \\
        --arch wrn-16-2 --block G4 --block-type basic --in-channels 1 --image 28 --images x.npy --logits logits.npy

PyTorch -> CheapConv: build the PyTorch model (seeded initialisation; BN statistics calibrated on the images, BN
weights and biases drawn away from 1 and 0), save its state dict as safetensors (num_batches_tracked left out: it is
not part of the shared naming) and its logits on the images; then `cheapconv eval --ckpt FILE --arch ... --block ...`:

    /usr/bin/python3 tests/interop/torch_interop.py from-torch --state torch.safetensors --seed 1 \\
        --arch wrn-16-2 --block G4 --block-type basic --in-channels 1 --image 28 --images x.npy --logits logits.npy

`cases FILE.json` runs a list of such jobs ({"direction": "to-torch"|"from-torch", and the options above by name}) in
one process, for the tests. Block names: S, G{g}, GN{x}, DW, B{b}, BG{b}-{g}, BGN{b}-{x}, BGDW{b} (CheapConv reads
the same spellings). Exit code 2 with one line for a file or option that does not fit.
"""

import argparse
import json
import os
import re
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from moonshine_torch import WideResNet  # noqa: E402

# A CheapConv training checkpoint also holds the optimiser's momentum under this prefix; a model does not load it.
MOMENTUM_PREFIX = "optimizer.momentum."


def build(job):
    match = re.fullmatch(r"wrn-(\d+)-(\d+)", job["arch"].lower())
    if not match:
        raise ValueError(f"unknown architecture {job['arch']!r}; expected wrn-<depth>-<width>")
    return WideResNet(int(match.group(1)), int(match.group(2)), job["block"], job["block_type"],
                      int(job["in_channels"]), int(job["classes"]), int(job["image"]))


def shared_state(model):
    """The state dict under the shared names: without BatchNorm's num_batches_tracked."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def logits_of(model, job):
    images = torch.from_numpy(np.load(job["images"]).astype(np.float32))
    model.eval()
    with torch.no_grad():
        logits = model(images)[0]
    np.save(job["logits"], logits.numpy().astype(np.float32))


def to_torch(job):
    model = build(job)
    tensors, _ = safetensors_io.read(job["state"])
    tensors = {k: v for k, v in tensors.items() if not k.startswith(MOMENTUM_PREFIX)}
    expected = shared_state(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{job['state']} does not fit the model: missing {missing[:8]}, unexpected {unexpected[:8]}")
    for name, value in tensors.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise ValueError(f"{job['state']}: {name} has shape {value.shape}, the model needs {tuple(expected[name].shape)}")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    logits_of(model, job)


def from_torch(job):
    torch.manual_seed(int(job["seed"]))
    model = build(job)
    images = torch.from_numpy(np.load(job["images"]).astype(np.float32))
    model.train()
    with torch.no_grad():
        # With momentum 0.1, 20 passes put 1 - 0.9^20 (about 88%) of the batch statistics into the running ones.
        for _ in range(20):
            model(images)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    safetensors_io.write(job["state"], {k: v.numpy() for k, v in shared_state(model).items()})
    logits_of(model, job)


DIRECTIONS = {"to-torch": to_torch, "from-torch": from_torch}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in DIRECTIONS:
        command = commands.add_parser(name)
        command.add_argument("--state", required=True, help="the safetensors file to read (to-torch) or write (from-torch)")
        command.add_argument("--arch", required=True, help="wrn-<depth>-<width>")
        command.add_argument("--block", default="S", help="the unit: S, G4, GN4, DW, B2, BG2-4, BGN2-4, BGDW2, ...")
        command.add_argument("--block-type", default="basic", choices=["basic", "bottle"])
        command.add_argument("--in-channels", type=int, default=1)
        command.add_argument("--classes", type=int, default=10)
        command.add_argument("--image", type=int, default=28)
        command.add_argument("--images", required=True, help="N x C x H x W float32 .npy, normalised as in training")
        command.add_argument("--logits", required=True, help="where to write the N x classes logits (.npy)")
        if name == "from-torch":
            command.add_argument("--seed", type=int, default=0)
    cases = commands.add_parser("cases")
    cases.add_argument("file", help="JSON: a list of jobs")
    args = parser.parse_args(argv)
    try:
        if args.command == "cases":
            with open(args.file, encoding="utf-8") as f:
                jobs = json.load(f)
            for job in jobs:
                DIRECTIONS[job["direction"]](job)
                print(f"{job['direction']} {job['arch']} {job['block']} {job['block_type']}: {job['logits']}")
        else:
            DIRECTIONS[args.command](vars(args))
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
