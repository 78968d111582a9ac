// Stream capture on the emulator (cc_capture_begin / cc_capture_end / cc_graph_launch / cc_graph_destroy) and the
// ordered copy and fill: a capture runs nothing, a launch of the graph runs everything captured again in order — on the
// buffers' contents at that time — and every misuse is refused with a message.
#include "abi_test.h"

#include <vector>

namespace cc_abi_test {
namespace {

void test_capture_and_replay(Tally& t)
{
    const cc_elementwise_problem p{6};
    std::vector<float> a{1, 2, 3, 4, 5, 6}, b(6, 10.0f), sum(6, -1.0f), copy(6, -1.0f), bytes(2, 0.0f);
    cc_handle h = emulator();
    expect_status(t, cc_capture_begin(h, nullptr), CC_SUCCESS, {}, "capture begin");
    expect_status(t, cc_add(h, &p, a.data(), b.data(), sum.data(), nullptr), CC_SUCCESS, {}, "an add, captured");
    expect_status(t, cc_scale(h, &p, 2.0f, sum.data(), nullptr), CC_SUCCESS, {}, "a scale, captured");
    expect_status(t, cc_memcpy_async(h, copy.data(), sum.data(), 6 * sizeof(float), nullptr), CC_SUCCESS, {}, "a copy, captured");
    expect_status(t, cc_memset8_async(h, bytes.data(), 0xFF, sizeof(float), nullptr), CC_SUCCESS, {}, "a fill, captured");
    t.check(sum[0] == -1.0f && copy[0] == -1.0f && bytes[0] == 0.0f, "nothing runs while it is captured");
    cc_graph graph = nullptr;
    expect_status(t, cc_capture_end(h, nullptr, &graph), CC_SUCCESS, {}, "capture end");

    expect_status(t, cc_graph_launch(h, graph, nullptr), CC_SUCCESS, {}, "a launch of the graph");
    t.check(sum == std::vector<float>{22, 24, 26, 28, 30, 32} && copy == sum, "the graph runs its calls in order: (a + b) * 2, then the copy");
    t.check(bytes[0] != bytes[0] && bytes[1] == 0.0f, "the fill sets exactly its bytes (0xFFFFFFFF is a NaN)");

    a.assign(6, 0.5f); // new inputs in the same buffers
    expect_status(t, cc_graph_launch(h, graph, nullptr), CC_SUCCESS, {}, "a second launch");
    t.check(sum == std::vector<float>(6, 21.0f) && copy == sum, "a second launch computes from the buffers' new contents");
    expect_status(t, cc_graph_destroy(h, graph), CC_SUCCESS, {}, "destroy");
    expect_status(t, cc_graph_destroy(h, nullptr), CC_SUCCESS, {}, "destroying NULL does nothing");
}

void test_misuse(Tally& t)
{
    const cc_status bad = CC_ERROR_INVALID_VALUE;
    cc_handle h = emulator();
    cc_graph graph = nullptr;
    expect_status(t, cc_capture_end(h, nullptr, &graph), bad, {"no capture is under way"}, "end without begin");
    expect_status(t, cc_capture_begin(h, nullptr), CC_SUCCESS, {}, "begin");
    expect_status(t, cc_capture_begin(h, nullptr), bad, {"already under way"}, "a second begin");
    expect_status(t, cc_capture_end(h, nullptr, nullptr), bad, {"graph is NULL"}, "end without a place for the graph");
    expect_status(t, cc_capture_end(h, nullptr, &graph), CC_SUCCESS, {}, "end (an empty capture)");
    expect_status(t, cc_graph_launch(h, graph, nullptr), CC_SUCCESS, {}, "an empty graph launches");
    expect_status(t, cc_graph_launch(h, nullptr, nullptr), bad, {"graph is NULL"}, "launching NULL");
    expect_status(t, cc_graph_launch(nullptr, graph, nullptr), bad, {"handle is NULL"}, "launching without a handle");

    cc_handle other = nullptr;
    expect_status(t, cc_create(&other, 0), CC_SUCCESS, {}, "a second handle");
    expect_status(t, cc_graph_launch(other, graph, nullptr), bad, {"captured with another handle"}, "a graph on another handle");
    expect_status(t, cc_graph_destroy(other, graph), bad, {"captured with another handle"}, "destroyed through another handle");
    cc_destroy(other);
    expect_status(t, cc_graph_destroy(h, graph), CC_SUCCESS, {}, "destroy");

    std::vector<float> buffer(4);
    expect_status(t, cc_memcpy_async(h, buffer.data(), buffer.data() + 1, 2 * sizeof(float), nullptr), bad, {"overlaps"},
                  "an overlapping copy");
    expect_status(t, cc_memcpy_async(h, nullptr, buffer.data(), 4, nullptr), bad, {"destination is NULL"}, "a copy to NULL");
    expect_status(t, cc_memset8_async(h, nullptr, 0, 4, nullptr), bad, {"destination is NULL"}, "a fill of NULL");
    expect_status(t, cc_memcpy_async(h, nullptr, nullptr, 0, nullptr), CC_SUCCESS, {}, "an empty copy needs no pointers");
}

} // namespace

void run_graph_tests(Tally& t)
{
    test_capture_and_replay(t);
    test_misuse(t);
}

} // namespace cc_abi_test
