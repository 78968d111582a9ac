#!/usr/bin/env bash
# The Moonshine table on Fashion-MNIST (issue 12, item 4): WRN-16-2 with each unit kind, distilled with attention
# transfer (beta 1000, alpha 0) from the shipped teacher (models/wrn-16-2-fashion-mnist) and trained alone, all on the
# same budget, for several seeds; then `report` over every run and a summary per unit and mode (mean and spread over
# the seeds) in OUT_DIR/moonshine.md, which names the commit, the machine, the budget and these commands.
#
#   bench/fashion-mnist/moonshine.sh OUT_DIR
#
# The budget and the set come from the environment (defaults in brackets):
#   UNITS ["S G2 G4 GN4 DW B2 BG2-4 BGDW2"]  SEEDS ["0 1"]  EPOCHS [3]  TRAIN_SUBSET [10000]  TEST_SUBSET [10000]
#   DEVICE [cpu]  TEACHER [models/wrn-16-2-fashion-mnist]  DATA [Debian's dataset-fashion-mnist]
# A run that has finished (its summary says all planned epochs) is kept; one that stopped is resumed; so the script
# can be run again after an interruption and continues where it was.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:?usage: bench/fashion-mnist/moonshine.sh OUT_DIR}
units=${UNITS:-"S G2 G4 GN4 DW B2 BG2-4 BGDW2"}
seeds=${SEEDS:-"0 1"}
epochs=${EPOCHS:-3}
train_subset=${TRAIN_SUBSET:-10000}
test_subset=${TEST_SUBSET:-10000}
device=${DEVICE:-cpu}
teacher=${TEACHER:-models/wrn-16-2-fashion-mnist}
data=()
if [ -n "${DATA:-}" ]; then data=(--data "$DATA"); fi

dotnet build -c Release src/CheapConv.Cli >/dev/null
cli() { dotnet run -c Release --no-build --project src/CheapConv.Cli -- "$@"; }

# finished DIR: whether DIR's summary says every planned epoch ran.
finished() {
    [ -f "$1/summary.json" ] && python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s["epochs"] == s["planned_epochs"] else 1)' "$1/summary.json"
}

recipe=(--dataset fashion-mnist "${data[@]}" --epochs "$epochs" --train-subset "$train_subset" --test-subset "$test_subset"
        --schedule cosine --deterministic --device "$device")
mkdir -p "$out"
runs=()
for seed in $seeds; do
    for unit in $units; do
        for mode in at alone; do
            dir="$out/wrn-16-2-$unit-$mode-seed$seed"
            runs+=("$dir")
            if finished "$dir"; then
                echo "== $dir: finished, kept"
                continue
            fi
            command=train
            [ "$mode" = at ] && command=distill
            if [ -f "$dir/config.json" ]; then
                echo "== $dir: resumed"
                cli "$command" --resume "$dir"
            elif [ "$mode" = at ]; then
                echo "== $dir"
                cli distill --teacher "$teacher" --arch wrn-16-2 --block "$unit" --alpha 0 --beta 1000 "${recipe[@]}" --seed "$seed" --out "$dir"
            else
                echo "== $dir"
                cli train --arch wrn-16-2 --block "$unit" "${recipe[@]}" --seed "$seed" --out "$dir"
            fi
        done
    done
done

cli report "$teacher" "${runs[@]}" --out "$out" --device "$device"

{
    echo "# The Moonshine table on Fashion-MNIST ($(date -u +%Y-%m-%d))"
    echo
    echo "Commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet HEAD -- src native || echo ' (with uncommitted changes to src or native)'); machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), device $device."
    echo "Budget per student: $epochs epoch(s) on the first $train_subset Fashion-MNIST training images, cosine learning rate from 0.1,"
    echo "batch 128; tested on the first $test_subset test images; seeds: $seeds. Distilled: attention transfer (beta 1000, alpha 0)"
    echo "from \`$teacher\`; alone: the same recipe without a teacher. Made by:"
    echo
    echo '```sh'
    echo "UNITS=\"$units\" SEEDS=\"$seeds\" EPOCHS=$epochs TRAIN_SUBSET=$train_subset TEST_SUBSET=$test_subset DEVICE=$device \\"
    echo "  bench/fashion-mnist/moonshine.sh $out"
    echo '```'
    echo
    python3 bench/fashion-mnist/moonshine_table.py "$out/report.csv"
} > "$out/moonshine.md"
echo "wrote $out/moonshine.md (the summary), report.md, report.csv and pareto.png"
