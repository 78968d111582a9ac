#!/usr/bin/env bash
# Runs the kernel check suite on a real NVIDIA GPU from the self-contained bundle (no .NET SDK needed) and
# writes a Markdown summary to bench/results/gpu-check-<date>-<gpu>.md.
#
# Build the bundle on a development machine, then copy it (with this repository) to the GPU machine:
#   dotnet tool restore && dotnet cake --target=Bundle   # artifacts/bundle: CheapConv.Cli, the emulator, COMMIT
#
# usage: bench/gpu/check.sh [BUNDLE_DIR] [SHAPE_FILE...]
#   BUNDLE_DIR   folder holding the cheapconv executable (default: <repo>/artifacts/bundle)
#   SHAPE_FILE   shape catalogues to check (default: <repo>/shapes/*.txt)
# environment:
#   CHEAPCONV_CUDA_SYNC   1 (default here) synchronizes after each launch so a fault names its kernel
#   CHECK_TIMEOUT         seconds allowed per problem (default 600)
# exit status: 0 all passed, 1 some failed, 2 usage or setup error, 3 no usable GPU.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)

die() { echo "check.sh: $1" >&2; exit "${2:-2}"; }

bundle=${1:-$repo_root/artifacts/bundle}
[[ $# -gt 0 ]] && shift
[[ -d $bundle ]] || die "bundle folder $bundle does not exist. Build it on a development machine with
  dotnet publish src/CheapConv.Cli -r linux-x64 --self-contained -c Release -o artifacts/bundle
and copy artifacts/bundle here, or pass its path as the first argument."
# The published executable is CheapConv.Cli ("cheapconv" would clash with the CheapConv library's name).
exe=""
for candidate in cheapconv CheapConv.Cli cheapconv-cli; do
    if [[ -x $bundle/$candidate ]]; then exe=$bundle/$candidate; break; fi
done
[[ -n $exe ]] || die "no cheapconv executable in $bundle (is it a 'dotnet publish --self-contained' output?)"

if [[ $# -gt 0 ]]; then
    shape_files=("$@")
else
    shopt -s nullglob
    shape_files=("$repo_root"/shapes/*.txt)
    shopt -u nullglob
fi
[[ ${#shape_files[@]} -gt 0 ]] || die "no shape catalogues found in $repo_root/shapes (expected *.txt files)"
for f in "${shape_files[@]}"; do [[ -r $f ]] || die "cannot read shape catalogue $f"; done

command -v nvidia-smi >/dev/null 2>&1 || die "nvidia-smi not found: this machine has no NVIDIA driver (or it is not on PATH)" 3
if ! smi_out=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1); then
    die "nvidia-smi failed: $smi_out" 3
fi
gpu_name=$(head -n1 <<<"$smi_out" | cut -d, -f1 | sed 's/^ *//; s/ *$//')
driver_version=$(head -n1 <<<"$smi_out" | cut -d, -f2 | sed 's/^ *//; s/ *$//')
cuda_version=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -n1)
cuda_version=${cuda_version:-unknown}
gpu_count=$(wc -l <<<"$smi_out")
[[ -n $gpu_name ]] || die "nvidia-smi lists no GPU" 3

commit=$(git -C "$repo_root" rev-parse --verify -q HEAD 2>/dev/null || true)
if [[ -n $commit ]]; then
    if [[ -n $(git -C "$repo_root" status --porcelain 2>/dev/null | head -n1) ]]; then
        commit="$commit (working tree has uncommitted changes)"
    fi
elif [[ -r $bundle/COMMIT ]]; then
    commit="$(head -n1 "$bundle/COMMIT") (from the bundle's COMMIT file)"
fi
commit=${commit:-unknown}

date_utc=$(date -u +%Y-%m-%d)
time_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
slug=$(tr '[:upper:]' '[:lower:]' <<<"$gpu_name" | sed 's/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//')
results_dir=$repo_root/bench/results
mkdir -p "$results_dir"
summary=$results_dir/gpu-check-$date_utc-$slug.md

export CHEAPCONV_CUDA_SYNC=${CHEAPCONV_CUDA_SYNC:-1}
# On a GPU machine nothing may pass by skipping: every CUDA skip of a test run from here is a failure, with its reason.
export CHEAPCONV_REQUIRE_CUDA=1
timeout_s=${CHECK_TIMEOUT:-600}
run_with_timeout() {
    if command -v timeout >/dev/null 2>&1; then timeout "$timeout_s" "$@"; else "$@"; fi
}

echo "GPU:     $gpu_name ($gpu_count GPU(s) in nvidia-smi)"
echo "driver:  $driver_version, CUDA $cuda_version"
echo "commit:  $commit"
echo "bundle:  $bundle"
echo

echo "== cheapconv info"
info_rc=0
info_out=$("$exe" info 2>&1) || info_rc=$?
echo "$info_out"
echo
if [[ $info_rc -ne 0 ]]; then
    echo "check.sh: 'cheapconv info' exited with $info_rc" >&2
fi

md_escape() { sed 's/|/\\|/g' <<<"$1" | tr '\n' ' ' | sed 's/ *$//'; }

rows=()
details=()
passed=0
failed=0
unavailable=""
for file in "${shape_files[@]}"; do
    name=$(basename "$file")
    line_no=0
    while IFS= read -r raw || [[ -n $raw ]]; do
        line_no=$((line_no + 1))
        line=$(sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"$raw")
        [[ -z $line || $line == \#* || $line == "N C H"* ]] && continue
        used_by=""
        [[ $line == *"|"* ]] && used_by=$(sed 's/^[^|]*|[[:space:]]*//' <<<"$line")
        read -r -a f <<<"${line%%|*}"
        if [[ ${#f[@]} -ne 10 ]]; then
            die "$name:$line_no: expected 10 numbers 'N C H W K R S stride pad groups', found ${#f[@]}"
        fi
        problem="N=${f[0]} C=${f[1]} H=${f[2]} W=${f[3]} K=${f[4]} R=${f[5]} S=${f[6]} stride=${f[7]} pad=${f[8]} groups=${f[9]}"
        printf '%-80s ' "$name:$line_no $problem"

        rc=0
        out=$(run_with_timeout "$exe" check conv --n "${f[0]}" --c "${f[1]}" --h "${f[2]}" --w "${f[3]}" \
            --k "${f[4]}" --r "${f[5]}" --s "${f[6]}" --stride "${f[7]}" --pad "${f[8]}" --groups "${f[9]}" \
            --device cuda 2>&1) || rc=$?

        # The pass table: "<pass> <elements> <max abs> <max rel> <tolerance> <result>".
        errors=$(awk '$2 ~ /^[0-9]+$/ && $3 ~ /^[0-9.]+[eE][-+][0-9]+$/ { printf "%s%s abs %s rel %s", sep, $1, $3, $4; sep="; " }' <<<"$out")
        case $rc in
            0) status=PASS; passed=$((passed + 1)) ;;
            1) status=FAIL; failed=$((failed + 1)) ;;
            3) status=UNAVAILABLE; failed=$((failed + 1)); unavailable=$(grep -m1 '^error:' <<<"$out" || echo "$out" | head -n1) ;;
            124) status="TIMEOUT (${timeout_s} s)"; failed=$((failed + 1)) ;;
            *) status="ERROR (exit $rc)"; failed=$((failed + 1)) ;;
        esac
        echo "$status"
        rows+=("| $name:$line_no | $problem | $(md_escape "$used_by") | $status | $(md_escape "${errors:--}") |")
        if [[ $rc -ne 0 ]]; then
            # The lines that say what went wrong: errors, failed passes and their first bad elements.
            what=$(grep -E '^error:|FAILED|^    |^warning:' <<<"$out" | head -n 12 || true)
            [[ -z $what ]] && what=$(tail -n 12 <<<"$out")
            echo "$what" | sed 's/^/    /'
            details+=("### $name:$line_no — $problem" "" "status: $status" "" '```' "$what" '```' "")
        fi
        if [[ -n $unavailable ]]; then
            echo "check.sh: the GPU is not usable from cheapconv: $unavailable" >&2
            break 2
        fi
    done <"$file"
done

# The whole stack (kernels, autograd, models, losses, SGD) against the PyTorch fixtures on the GPU.
model_out=""
model_status=skipped
if [[ -z $unavailable ]]; then
    if model_out=$("$exe" check model --device cuda --fixtures "$repo_root/tests/fixtures" 2>&1); then
        model_status=PASS
    else
        model_status=FAIL
        failed=$((failed + 1))
    fi
    echo "check model on cuda: $model_status"
fi

{
    echo "# GPU check — $gpu_name — $date_utc"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| date (UTC) | $time_utc |"
    echo "| GPU | $gpu_name |"
    echo "| driver | $driver_version |"
    echo "| CUDA (nvidia-smi) | $cuda_version |"
    echo "| commit | $commit |"
    echo "| catalogues | $(for f in "${shape_files[@]}"; do printf '%s ' "$(basename "$f")"; done)|"
    echo "| passed | $passed |"
    echo "| failed | $failed |"
    [[ -n $unavailable ]] && echo "| stopped early | $(md_escape "$unavailable") |"
    echo
    echo "Produced by \`bench/gpu/check.sh\` with CHEAPCONV_CUDA_SYNC=$CHEAPCONV_CUDA_SYNC."
    echo
    echo "## cheapconv info"
    echo
    echo '```'
    echo "$info_out"
    echo '```'
    echo
    echo "## Models against the PyTorch fixtures (check model): $model_status"
    echo
    echo '```'
    echo "$model_out"
    echo '```'
    echo
    echo "## Problems"
    echo
    echo "| source | problem | used by | status | max errors |"
    echo "|---|---|---|---|---|"
    for row in "${rows[@]}"; do echo "$row"; done
    if [[ ${#details[@]} -gt 0 ]]; then
        echo
        echo "## Failures"
        echo
        for d in "${details[@]}"; do echo "$d"; done
    fi
} >"$summary"

echo
echo "passed $passed, failed $failed; summary: $summary"
if [[ -n $unavailable ]]; then exit 3; fi
[[ $failed -eq 0 ]]
