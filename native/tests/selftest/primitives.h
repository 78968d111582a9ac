// Shared by the native self-test (selftest.cpp) and the sanitizer driver (sancheck.cpp): launch helpers
// and the correctness checks of every shim primitive, run through the public C API.
#ifndef CHEAPCONV_SELFTEST_PRIMITIVES_H
#define CHEAPCONV_SELFTEST_PRIMITIVES_H

#include "cc_emu.h"

#include <string>

namespace cc_selftest {

struct Tally {
    int passed = 0, failed = 0;
    // Records one check; prints failures always, passes when verbose.
    void check(bool ok, const std::string& what);
    bool verbose = false;
};

// Launches through cc_emu_launch; on failure `message` holds the emulator's text.
int launch(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned shared, void** args, std::string* message = nullptr);

// Runs every primitive test (reductions, shuffles, votes, atomics, indices, __syncwarp, math, params).
void run_primitive_tests(Tally& t);

} // namespace cc_selftest

#endif
