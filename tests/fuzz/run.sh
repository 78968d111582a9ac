#!/usr/bin/env bash
# Fuzzes one reader of untrusted files with afl++ through SharpFuzz:
#   tests/fuzz/run.sh TARGET SECONDS [WORK_DIR]
# TARGET: idx idx-gz idx-labels cifar100 safetensors npz npy config metrics (see tests/CheapConv.Fuzz/Program.cs).
# Builds tests/CheapConv.Fuzz if needed, instruments a copy of its output in WORK_DIR (default artifacts/fuzz/TARGET),
# runs afl-fuzz from tests/fuzz/corpus/TARGET for SECONDS under a 512 MiB managed-heap limit (a reader that allocates
# what a header claims runs out of memory: a crash), then prints "TARGET: N executions in S s, C crashes, H hangs" and
# the crashing inputs with what they raise. Exit status 1 when afl found a crash or a hang, 0 otherwise.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${1:?usage: tests/fuzz/run.sh TARGET SECONDS [WORK_DIR]}"
seconds="${2:?usage: tests/fuzz/run.sh TARGET SECONDS [WORK_DIR]}"
work="${3:-$root/artifacts/fuzz/$target}"
corpus="$root/tests/fuzz/corpus/$target"
[ -d "$corpus" ] || { echo "no corpus for target '$target' in tests/fuzz/corpus" >&2; exit 2; }
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 2; }

bin="$root/tests/CheapConv.Fuzz/bin/Release/net10.0"
[ -f "$bin/CheapConv.Fuzz.dll" ] || dotnet build "$root/tests/CheapConv.Fuzz" -c Release -v quiet >&2
rm -rf "$work"
mkdir -p "$work/bin"
cp -r "$bin/." "$work/bin/"
# Instrument the copy of the library that holds the readers (the build output stays plain).
(cd "$root" && dotnet tool run sharpfuzz "$work/bin/CheapConv.Training.dll" >/dev/null)

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
  AFL_QUIET=1
export DOTNET_GCHeapHardLimit=0x20000000 DOTNET_TieredPGO=0 DOTNET_CLI_TELEMETRY_OPTOUT=1
afl-fuzz -V "$seconds" -i "$corpus" -o "$work/findings" -t 5000 -m none -- dotnet "$work/bin/CheapConv.Fuzz.dll" "$target" \
  >"$work/afl.log" 2>&1 || { tail -20 "$work/afl.log" >&2; exit 2; }

stats="$work/findings/default/fuzzer_stats"
value() { sed -n "s/^$1 *: *//p" "$stats"; }
crashes="$(value saved_crashes)"
hangs="$(value saved_hangs)"
echo "$target: $(value execs_done) executions in $(value run_time) s, $crashes crashes, $hangs hangs, $(value corpus_count) corpus entries"
shopt -s nullglob
found=("$work"/findings/default/crashes/id:* "$work"/findings/default/hangs/id:*)
if [ ${#found[@]} -gt 0 ]; then
  dotnet "$bin/CheapConv.Fuzz.dll" "$target" --replay "${found[@]}" || true
  exit 1
fi
