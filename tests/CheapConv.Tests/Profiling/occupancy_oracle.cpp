// The test oracle of Occupancy.Compute: NVIDIA's own calculator (cuda_occupancy.h of the CUDA toolkit, header-only
// host code). Reads lines "ARCH REGISTERS THREADS STATIC_SHARED DYNAMIC_SHARED" (ARCH 80 or 90) and prints, per line,
// the resident blocks per SM that cudaOccMaxActiveBlocksPerMultiprocessor computes for the default launch state.
// Built and run by OccupancyTests (g++ -std=c++17 occupancy_oracle.cpp).
#include <cuda_occupancy.h>

#include <cstdio>

int main()
{
    int arch, registers, threads, static_shared, dynamic_shared;
    while (std::scanf("%d %d %d %d %d", &arch, &registers, &threads, &static_shared, &dynamic_shared) == 5) {
        cudaOccDeviceProp device{};
        device.computeMajor = arch / 10;
        device.computeMinor = arch % 10;
        device.maxThreadsPerBlock = 1024;
        device.maxThreadsPerMultiprocessor = 2048;
        device.regsPerBlock = 65536;
        device.regsPerMultiprocessor = 65536;
        device.warpSize = 32;
        device.sharedMemPerBlock = 48 * 1024;
        device.sharedMemPerMultiprocessor = (arch == 90 ? 228 : 164) * 1024;
        device.numSms = arch == 90 ? 132 : 108;
        device.sharedMemPerBlockOptin = (arch == 90 ? 227 : 163) * 1024;
        device.reservedSharedMemPerBlock = 1024;

        cudaOccFuncAttributes kernel{};
        kernel.maxThreadsPerBlock = 1024;
        kernel.numRegs = registers;
        kernel.sharedSizeBytes = static_cast<size_t>(static_shared);
        kernel.partitionedGCConfig = PARTITIONED_GC_OFF;
        kernel.shmemLimitConfig = FUNC_SHMEM_LIMIT_OPTIN;
        kernel.maxDynamicSharedSizeBytes = static_cast<size_t>(dynamic_shared);

        cudaOccDeviceState state{};
        cudaOccResult result{};
        const cudaOccError status = cudaOccMaxActiveBlocksPerMultiprocessor(&result, &device, &kernel, &state, threads,
                                                                             static_cast<size_t>(dynamic_shared));
        std::printf("%d\n", status == CUDA_OCC_SUCCESS ? result.activeBlocksPerMultiprocessor : -1);
    }
    return 0;
}
