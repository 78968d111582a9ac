// cp.async in the emulator: each CUDA thread keeps its issued copies, tagged with the commit group they
// belong to, until a cp.async.wait_group covers them. The shim (cuda_shim.h) writes CC_CP_ASYNC_POISON into
// the destination at issue and performs the copies this file hands back at the wait, so a kernel that reads
// a destination before waiting for it reads a signalling NaN. Copies still pending when the thread exits are
// dropped: nothing can read them (a GPU completes them, but only a wait would make them visible).
#include "emu_internal.h"

namespace cc_emu_detail {

using cc_emu::AsyncCopies;

namespace {

AsyncCopies& copies() { return cc_emu::t_worker->current->async_copies; }

} // namespace

void async_copy_issue(const AsyncCopy& copy) {
    AsyncCopies& q = copies();
    q.pending.push_back(copy);
    q.group.push_back(q.committed);
}

void async_copy_commit() { copies().committed += 1; }

const AsyncCopy* async_copy_complete(int pending, unsigned* count) {
    AsyncCopies& q = copies();
    q.done.clear();
    // Groups 0 .. committed - 1 exist; every one older than the `pending` newest completes. Copies issued
    // after the last commit (group == committed) belong to no group yet and are never waited for here.
    const unsigned limit = q.committed > static_cast<unsigned>(pending) ? q.committed - static_cast<unsigned>(pending) : 0;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < q.pending.size(); ++i) {
        if (q.group[i] < limit) {
            q.done.push_back(q.pending[i]);
        } else {
            q.pending[kept] = q.pending[i];
            q.group[kept] = q.group[i];
            ++kept;
        }
    }
    q.pending.resize(kept);
    q.group.resize(kept);
    *count = static_cast<unsigned>(q.done.size());
    return q.done.data();
}

} // namespace cc_emu_detail
