#!/bin/sh
# check_ptxas.sh PTXAS ARCH PTX REPORT
# Assembles PTX for ARCH (e.g. sm_90) with `ptxas -v`, keeps the resource report (registers, shared,
# spills per kernel) in REPORT, and fails if any kernel spills registers to local memory.
set -eu
ptxas=$1
arch=$2
ptx=$3
report=$4
"$ptxas" -arch="$arch" -v -o /dev/null "$ptx" >"$report" 2>&1 || { cat "$report" >&2; exit 1; }
spills=$(grep -E '[1-9][0-9]* bytes spill (stores|loads)' "$report" || true)
if [ -n "$spills" ]; then
    echo "check_ptxas: $ptx spills registers on $arch:" >&2
    grep -B2 -E '[1-9][0-9]* bytes spill' "$report" >&2
    exit 1
fi
echo "check_ptxas: $ptx on $arch: $(grep -c 'Used [0-9]* registers' "$report") kernels, registers $(sed -n 's/.*Used \([0-9]*\) registers.*/\1/p' "$report" | sort -n | sed -n '1p;$p' | tr '\n' ' ')(min max), no spills"
