#!/bin/sh
# check_fatbin.sh CUOBJDUMP FATBIN "SASS_ARCHS" PTX_ARCH
# Checks with cuobjdump that FATBIN lists one ELF (SASS) per architecture in SASS_ARCHS ("80 90") and the
# compute_PTX_ARCH PTX, i.e. that nvcc built what the Makefile asked for and the file is a valid fatbin; and that no
# kernel of its SASS uses a stack frame or local memory (register spills). check_ptxas.sh assembles clang's sm_80
# PTX, where the thread-block-cluster kernels are empty (cuda_shim.h, CC_HAS_CLUSTERS): their real code exists only
# in this fatbin's sm_90 SASS, and this is the check that covers it.
set -eu
cuobjdump=$1
fatbin=$2
sass=$3
ptx=$4
listing=$("$cuobjdump" -lelf -lptx "$fatbin")
status=0
for arch in $sass; do
    echo "$listing" | grep -q "ELF file.*sm_$arch\.cubin" || { echo "check_fatbin: $fatbin has no sm_$arch SASS" >&2; status=1; }
done
echo "$listing" | grep -q "PTX file.*sm_$ptx\.ptx" || { echo "check_fatbin: $fatbin has no compute_$ptx PTX" >&2; status=1; }
local_memory=$("$cuobjdump" -res-usage "$fatbin" | grep -B1 -E 'STACK:[1-9]|LOCAL:[1-9]' || true)
if [ -n "$local_memory" ]; then
    echo "check_fatbin: $fatbin has kernels with a stack frame or local memory (spills):" >&2
    echo "$local_memory" >&2
    status=1
fi
[ $status -eq 0 ] && echo "check_fatbin: $fatbin ok:" $(echo "$listing" | sed 's/.*: //')
exit $status
