#!/bin/sh
# check_exports.sh LIBRARY SYMBOLS [PREFIX]
# Checks that LIBRARY's dynamic symbol table defines exactly the C ABI (one name per line in SYMBOLS,
# extracted from include/cheapconv.h by the Makefile) plus, when PREFIX is given, names starting with
# PREFIX (cc_emu_ for the emulator libraries): every ABI function exported, kernels and internals hidden.
set -eu
lib=$1
symbols=$2
prefix=${3:-}
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
status=0
missing=$(echo "$exported" | comm -13 - "$symbols")
if [ -n "$missing" ]; then
    echo "error: $lib does not export these C ABI functions:" $missing >&2
    status=1
fi
extra=$(echo "$exported" | comm -23 - "$symbols")
if [ -n "$prefix" ]; then extra=$(echo "$extra" | grep -v "^$prefix" || true); fi
if [ -n "$extra" ]; then
    echo "error: $lib exports more than the C ABI${prefix:+ and $prefix*}:" $extra >&2
    status=1
fi
[ $status -eq 0 ] && echo "check_exports: $lib ok ($(echo "$exported" | wc -l) symbols)"
exit $status
