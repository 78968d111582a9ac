"""PyTorch definition of CheapConv's networks: the pre-activation WRN-d-k of REFERENCE.md and its Moonshine students.

Written from REFERENCE.md and the model description (not generated from the C# code), with PyTorch-style state-dict
names that the C# models (src/CheapConv.Training/Models) use verbatim: conv1, block1.layer.0.bn1, ….conv1.grouped,
….conv1.bn, ….conv1.pointwise, ….conv1.reduce/bn1/conv/bn2/expand, ….shortcut, bn1, fc. Used by the reference fixtures
(tests/fixtures/make_fixtures.py) and by the checkpoint interchange checks (tests/interop/torch_interop.py). BatchNorm's
num_batches_tracked buffer is not part of the shared naming: the momentum is fixed at 0.1, so it is unused.
"""

import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


# ----------------------------------------------------------------------------------------------------
# Units. A unit maps in -> out channels with a stride; the block names it conv1 / conv2.
# ----------------------------------------------------------------------------------------------------

def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM, affine=True)


class PlainUnit(nn.Conv2d):
    """S: the unit IS the 3x3 conv, so its state-dict name is `<unit>.weight`."""

    def __init__(self, cin, cout, stride):
        super().__init__(cin, cout, 3, stride=stride, padding=1, bias=False)


class GroupedUnit(nn.Module):
    """G(g), G(N/x), G(N): 3x3 grouped in->in (stride s) -> BN(in) -> ReLU -> 1x1 in->out."""

    def __init__(self, cin, cout, stride, groups):
        super().__init__()
        if cin % groups != 0:
            raise ValueError(f"groups {groups} must divide the {cin} input channels")
        self.grouped = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn = batch_norm(cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(F.relu(self.bn(self.grouped(x))))


class BottleneckUnit(nn.Module):
    """B(b), BG(b,g), BG(b,N/x), BG(b,N): 1x1 in->mid -> BN -> ReLU -> 3x3 mid->mid (stride s, groups)
    -> BN -> ReLU -> 1x1 mid->out, mid = out/b."""

    def __init__(self, cin, cout, stride, bottleneck, groups_of_mid):
        super().__init__()
        if cout % bottleneck != 0:
            raise ValueError(f"bottleneck {bottleneck} must divide the {cout} output channels")
        mid = cout // bottleneck
        groups = groups_of_mid(mid)
        if groups < 1 or mid % groups != 0:
            raise ValueError(f"groups {groups} must divide the {mid} bottleneck channels")
        self.reduce = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = batch_norm(mid)
        self.conv = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = batch_norm(mid)
        self.expand = nn.Conv2d(mid, cout, 1, bias=False)

    def forward(self, x):
        return self.expand(F.relu(self.bn2(self.conv(F.relu(self.bn1(self.reduce(x)))))))


def _per_group(channels, x):
    if channels % x != 0:
        raise ValueError(f"{x} channels per group must divide {channels}")
    return channels // x


def make_unit(spec, cin, cout, stride):
    """Builds a unit from its code name: S, G{g}, GN{x}, DW, B{b}, BG{b}-{g}, BGN{b}-{x}, BGDW{b}."""
    if spec == "S":
        return PlainUnit(cin, cout, stride)
    if spec == "DW":
        return GroupedUnit(cin, cout, stride, cin)
    if spec.startswith("GN"):
        return GroupedUnit(cin, cout, stride, _per_group(cin, int(spec[2:])))
    if spec.startswith("G"):
        return GroupedUnit(cin, cout, stride, int(spec[1:]))
    if spec.startswith("BGDW"):
        return BottleneckUnit(cin, cout, stride, int(spec[4:]), lambda mid: mid)
    if spec.startswith("BGN"):
        b, x = (int(v) for v in spec[3:].split("-"))
        return BottleneckUnit(cin, cout, stride, b, lambda mid: _per_group(mid, x))
    if spec.startswith("BG"):
        b, g = (int(v) for v in spec[2:].split("-"))
        return BottleneckUnit(cin, cout, stride, b, lambda mid: g)
    if spec.startswith("B"):
        return BottleneckUnit(cin, cout, stride, int(spec[1:]), lambda mid: 1)
    raise ValueError(f"unknown unit {spec!r}")


# ----------------------------------------------------------------------------------------------------
# Blocks and the network.
# ----------------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """o = relu(bn1(x)); y = conv2(relu(bn2(conv1(o)))); out = y + (x if in == out else shortcut(o))."""

    def __init__(self, cin, cout, stride, unit):
        super().__init__()
        self.bn1 = batch_norm(cin)
        self.conv1 = make_unit(unit, cin, cout, stride)
        self.bn2 = batch_norm(cout)
        self.conv2 = make_unit(unit, cout, cout, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False) if cin != cout else None

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (x if self.shortcut is None else self.shortcut(o))


class BottleBlock(nn.Module):
    """o = relu(bn1(x)); out = conv1(o) + (x if in == out else shortcut(o))."""

    def __init__(self, cin, cout, stride, unit):
        super().__init__()
        self.bn1 = batch_norm(cin)
        self.conv1 = make_unit(unit, cin, cout, stride)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False) if cin != cout else None

    def forward(self, x):
        o = F.relu(self.bn1(x))
        return self.conv1(o) + (x if self.shortcut is None else self.shortcut(o))


class Group(nn.Module):
    """`block{g}`: n blocks under `layer.{i}`; block 0 changes channels and carries the stride."""

    def __init__(self, blocks, cin, cout, stride, unit, block):
        super().__init__()
        kind = {"basic": BasicBlock, "bottle": BottleBlock}[block]
        self.layer = nn.Sequential(*[kind(cin if i == 0 else cout, cout, stride if i == 0 else 1, unit)
                                     for i in range(blocks)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    """Pre-activation WRN-d-k; forward returns (logits, [group1, group2, group3])."""

    def __init__(self, depth, width, unit, block, in_channels, classes, image_size):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"depth {depth} is not 6n+4")
        n = (depth - 4) // 6
        channels = [16, 16 * width, 32 * width, 64 * width]
        # Fashion-MNIST: 28x28 is zero-padded to 32x32 first (models.md).
        self.pad = 2 if image_size == 28 else 0
        self.conv1 = nn.Conv2d(in_channels, channels[0], 3, padding=1, bias=False)
        self.block1 = Group(n, channels[0], channels[1], 1, unit, block)
        self.block2 = Group(n, channels[1], channels[2], 2, unit, block)
        self.block3 = Group(n, channels[2], channels[3], 2, unit, block)
        self.bn1 = batch_norm(channels[3])
        self.fc = nn.Linear(channels[3], classes)

    def forward(self, x):
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        g1 = self.block1(self.conv1(x))
        g2 = self.block2(g1)
        g3 = self.block3(g2)
        pooled = F.relu(self.bn1(g3)).mean(dim=(2, 3))
        return self.fc(pooled), [g1, g2, g3]
