// The parts of the C ABI that are not an op family: status strings, version, backend, the handle calls
// and the per-thread last-error message.
#include "abi_test.h"

#include <cstring>
#include <string>
#include <thread>

namespace cc_abi_test {
namespace {

void test_status_strings(Tally& t)
{
    const struct {
        cc_status status;
        const char* name;
    } all[] = {{CC_SUCCESS, "CC_SUCCESS"},
               {CC_ERROR_INVALID_VALUE, "CC_ERROR_INVALID_VALUE"},
               {CC_ERROR_NOT_SUPPORTED, "CC_ERROR_NOT_SUPPORTED"},
               {CC_ERROR_WORKSPACE, "CC_ERROR_WORKSPACE"},
               {CC_ERROR_NO_DEVICE, "CC_ERROR_NO_DEVICE"},
               {CC_ERROR_DRIVER, "CC_ERROR_DRIVER"},
               {CC_ERROR_LAUNCH, "CC_ERROR_LAUNCH"},
               {CC_ERROR_EMULATOR, "CC_ERROR_EMULATOR"},
               {CC_ERROR_INTERNAL, "CC_ERROR_INTERNAL"}};
    for (const auto& s : all)
        t.check(std::strcmp(cc_status_string(s.status), s.name) == 0, std::string("cc_status_string(") + s.name + ")");
    t.check(std::strcmp(cc_status_string(static_cast<cc_status>(9)), "CC_ERROR_UNKNOWN") == 0 &&
                std::strcmp(cc_status_string(static_cast<cc_status>(-1)), "CC_ERROR_UNKNOWN") == 0,
            "cc_status_string of values outside the enum is CC_ERROR_UNKNOWN");
}

void test_version_and_backend(Tally& t)
{
    t.check(cc_version() == CC_VERSION && cc_version() / 10000 == CC_VERSION_MAJOR, "cc_version() == CC_VERSION");
    t.check(cc_backend_kind() == CC_BACKEND_EMULATOR, "cc_backend_kind() of the emulator ABI is CC_BACKEND_EMULATOR");
}

void test_handle(Tally& t)
{
    cc_handle h = nullptr;
    expect_status(t, cc_create(nullptr, 0), CC_ERROR_INVALID_VALUE, {"cc_create", "handle is NULL"}, "cc_create(NULL)");
    expect_status(t, cc_create(&h, -2), CC_ERROR_INVALID_VALUE, {"device must be", "got -2"}, "cc_create(device -2)");
    expect_status(t, cc_create(&h, CC_CURRENT_CONTEXT), CC_SUCCESS, {}, "cc_create(CC_CURRENT_CONTEXT) on the emulator");
    expect_status(t, cc_destroy(h), CC_SUCCESS, {}, "cc_destroy");
    expect_status(t, cc_destroy(nullptr), CC_ERROR_INVALID_VALUE, {"handle is NULL"}, "cc_destroy(NULL)");

    char text[128];
    expect_status(t, cc_describe(emulator(), text, sizeof text), CC_SUCCESS, {}, "cc_describe");
    t.check(std::strncmp(text, "emulator: ", 10) == 0 && std::strstr(text, " worker threads") != nullptr,
            std::string("cc_describe says \"emulator: N worker threads\": ") + text);
    char small[5];
    cc_describe(emulator(), small, sizeof small);
    t.check(std::strcmp(small, "emul") == 0, "cc_describe truncates to its capacity, NUL included");
    expect_status(t, cc_describe(emulator(), text, 0), CC_ERROR_INVALID_VALUE, {"capacity is 0"}, "cc_describe(capacity 0)");
    expect_status(t, cc_describe(nullptr, text, sizeof text), CC_ERROR_INVALID_VALUE, {"handle is NULL"}, "cc_describe(NULL handle)");
}

// The message belongs to the thread that made the failing call; successes leave it alone.
void test_last_error_per_thread(Tally& t)
{
    cc_conv_problem p;
    cc_conv_init(&p, 1, 8, 4, 4, 8, 3, 3, 1, 1, 1, 1, 3); // groups 3 do not divide 8: fails on this thread
    const std::string mine = cc_last_error();
    std::string fresh = "unset", other;
    std::thread([&] {
        fresh = cc_last_error();
        cc_linear_problem bad{0, 4, 4};
        cc_linear_validate(&bad);
        other = cc_last_error();
    }).join();
    t.check(fresh.empty(), "a new thread's cc_last_error() is \"\"");
    t.check(other.find("n must be positive") != std::string::npos, "the other thread sees its own failure: " + other);
    t.check(mine == cc_last_error() && mine.find("groups (3) must divide c (8)") != std::string::npos,
            "this thread's message is untouched by the other thread: " + mine);
    cc_conv_problem good;
    cc_conv_init(&good, 1, 8, 4, 4, 8, 3, 3, 1, 1, 1, 1, 4);
    t.check(mine == cc_last_error(), "a successful call leaves the last failure's message");
}

} // namespace

void run_api_tests(Tally& t)
{
    test_status_strings(t);
    test_version_and_backend(t);
    test_handle(t);
    test_last_error_per_thread(t);
}

} // namespace cc_abi_test
