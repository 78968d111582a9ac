#!/bin/sh
# run_sancheck.sh ASAN_BIN TSAN_BIN  (used by `make -C native sancheck`)
# Runs every cc_emu_sancheck case in the build that must pass it or catch it, and checks the exit status
# and the report text documented at the top of tests/sancheck.cpp. Prints one line per check.
set -u
asan=$1
tsan=$2
failed=0
passed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# expect BINARY CASE WANT_STATUS TEXT
expect() {
    "$1" "$2" >"$log" 2>&1
    status=$?
    if [ "$status" -eq "$3" ] && grep -q -- "$4" "$log"; then
        echo "ok    $(basename "$(dirname "$1")") $2: exit $status, \"$4\""
        passed=$((passed + 1))
    else
        echo "FAIL  $(basename "$(dirname "$1")") $2: exit $status (want $3), looking for \"$4\"; output:"
        sed 's/^/      /' "$log" | head -40
        failed=$((failed + 1))
    fi
}

for bin in "$asan" "$tsan"; do
    expect "$bin" conv 0 "conv: ok"
    expect "$bin" selftest 0 "selftest: [0-9]* passed, 0 failed"
    expect "$bin" divergent-barrier 1 "CC_EMU_DIVERGENT_BARRIER"
    expect "$bin" shuffle-mismatch 1 "CC_EMU_WARP_MISMATCH"
done
expect "$asan" oob-global 1 "AddressSanitizer: heap-buffer-overflow"
expect "$asan" oob-dynamic-shared 1 "AddressSanitizer: heap-buffer-overflow"
expect "$asan" oob-static-shared 1 "runtime error: index 64 out of bounds"
expect "$tsan" missing-barrier 66 "ThreadSanitizer: data race"
echo "sancheck: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
