#!/usr/bin/env bash
# Times the conv kernels on a real NVIDIA GPU from the self-contained bundle, and PyTorch/cuDNN on the
# same problems in the same run, writing both Markdown tables to bench/results/; then calibrates the roofline
# model: `cheapconv profile --catalogue` of the same problems (H200 model on an H200, else H100) against the
# measured times, per problem and pass (bench/results/calibration-<date>-<gpu>.md).
#
# usage: bench/gpu/bench.sh [BUNDLE_DIR] [SHAPE_FILE]
#   BUNDLE_DIR   folder holding the published CLI (default: <repo>/artifacts/bundle; see check.sh)
#   SHAPE_FILE   catalogue to time (default: <repo>/shapes/wrn40-2-moonshine.txt)
# exit status: 0 done, 2 usage or setup error, 3 no usable GPU; the PyTorch half is skipped, with a
# message, where PyTorch is not installed.
set -euo pipefail
# On a GPU machine nothing may pass by skipping: every CUDA skip of a test run from here is a failure, with its reason.
export CHEAPCONV_REQUIRE_CUDA=1

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
die() { echo "bench.sh: $1" >&2; exit "${2:-2}"; }

bundle=${1:-$repo_root/artifacts/bundle}
shapes=${2:-$repo_root/shapes/wrn40-2-moonshine.txt}
[[ -d $bundle ]] || die "bundle folder $bundle does not exist: build it with 'dotnet cake --target=Bundle' on a development machine"
exe=""
for candidate in cheapconv CheapConv.Cli; do
    if [[ -x $bundle/$candidate ]]; then exe=$bundle/$candidate; break; fi
done
[[ -n $exe ]] || die "no CheapConv.Cli executable in $bundle"
[[ -r $shapes ]] || die "cannot read shape catalogue $shapes"
command -v nvidia-smi >/dev/null 2>&1 || die "nvidia-smi not found: this machine has no NVIDIA driver" 3

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
slug=$(tr '[:upper:]' '[:lower:]' <<<"$gpu" | tr -cs 'a-z0-9' '-' | sed 's/^-*//; s/-*$//')
stamp=$(date -u +%Y-%m-%d)
mkdir -p "$repo_root/bench/results"
ours=$repo_root/bench/results/bench-conv-$stamp-$slug.md
theirs=$repo_root/bench/results/bench-torch-$stamp-$slug.md
calibration=$repo_root/bench/results/calibration-$stamp-$slug.md

echo "== CheapConv kernels on $gpu"
"$exe" bench conv --device cuda --catalogue "$shapes" --out "$ours"

if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "== PyTorch (cuDNN, fp32) on the same problems"
    python3 "$script_dir/torch_conv.py" --device cuda --catalogue "$shapes" --out "$theirs"
else
    echo "bench.sh: PyTorch with CUDA is not importable here; skipped the cuDNN side" >&2
fi
echo "== the roofline model of the same problems (profiling emulator), against the measurement"
model=h100
[[ $gpu == *H200* ]] && model=h200
modelled=$(mktemp)
if "$exe" profile --catalogue "$shapes" --gpu "$model" --json >"$modelled"; then
    commit=$(cat "$bundle/COMMIT" 2>/dev/null || git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    python3 "$script_dir/calibrate.py" "$modelled" "$ours" "$calibration" --gpu "$gpu (model $model)" --commit "$commit"
else
    echo "bench.sh: profile --catalogue failed; no calibration written" >&2
fi
rm -f "$modelled"
echo "results: $ours ${theirs} $calibration"
