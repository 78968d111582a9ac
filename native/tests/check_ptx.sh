#!/bin/sh
# check_ptx.sh SOURCE.cu OUTPUT.ptx [KERNELS_H]
# Checks the PTX clang produced for SOURCE: an `.entry` for every kernel the source registers with
# CC_REGISTER_KERNEL or CC_REGISTER_CLUSTER_KERNEL (so no kernel silently lost its __global__), and no `.extern .func` (a call to a
# function that does not exist without libdevice, e.g. a math function the shim does not lower to an
# instruction: the driver's JIT would reject the module). With KERNELS_H (production kernels), also that
# every registered kernel cc_NAME_kernel is listed there as X(MODULE, NAME), MODULE being SOURCE's name,
# so the launchers and the CUDA runtime know it and look for it in this module. A registration marked
# `/* emulator only */` (a test kernel the GPU build leaves out on purpose, e.g. one ptxas would refuse) is skipped.
set -eu
src=$1
ptx=$2
kernels_h=${3:-}
module=$(basename "$src" .cu)
status=0
names=$(grep -v 'emulator only' "$src" | sed -n 's/^[[:space:]]*CC_REGISTER_\(CLUSTER_\)\{0,1\}KERNEL(\([A-Za-z_][A-Za-z0-9_]*\)[,)].*/\2/p')
if [ -z "$names" ]; then
    echo "check_ptx: $src registers no kernels (CC_REGISTER_KERNEL)" >&2
    status=1
fi
for k in $names; do
    if ! grep -q "\.entry[[:space:]]\{1,\}$k(" "$ptx"; then
        echo "check_ptx: $ptx has no .entry for $k (registered in $src)" >&2
        status=1
    fi
    if [ -n "$kernels_h" ]; then
        short=${k#cc_}
        short=${short%_kernel}
        if [ "cc_${short}_kernel" != "$k" ] || ! grep -q "X($module, $short)" "$kernels_h"; then
            echo "check_ptx: $k (registered in $src) is not listed as X($module, $short) in CC_KERNELS of $kernels_h" >&2
            status=1
        fi
    fi
done
if grep -n '\.extern[[:space:]]\{1,\}\.func' "$ptx" >&2; then
    echo "check_ptx: $ptx calls unresolved external functions (listed above)" >&2
    status=1
fi
if [ $status -eq 0 ]; then
    echo "check_ptx: $ptx ok ($(echo $names | wc -w) entries)"
fi
exit $status
