// The compiler-checked launch: arguments are converted to the parameter types the kernel declares in
// cheapconv/kernels.h and packed into cuLaunchKernel's void*[] here, once, for every launcher.
//
//   launch<KernelId::conv2d_forward>(handle, geometry, stream, text, *problem, x, w, y);
//
// A wrong argument count fails a static_assert, and each argument initialises its parameter with braces,
// so a conversion that could lose information (int64_t -> int, double -> float, const float* -> float*)
// is a compile error: the launcher must make such a conversion explicit, after checking that it is exact.
// Only decltype(&kernel) is used, never the kernel itself, so this compiles into libcheapconv.so, which
// has no kernel code.
#ifndef CHEAPCONV_LAUNCH_LAUNCH_H
#define CHEAPCONV_LAUNCH_LAUNCH_H

#include "runtime.h"
#include "status.h"

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

namespace cc {

// Writes a one-line description of the problem being launched ("conv n=2 c=8 ..."); called only when a
// launch fails, so successful launches never format text. Holds a reference to the callable: use it
// within the full expression that created it.
class ProblemText {
public:
    template <class F>
    ProblemText(const F& write) : self_(&write), write_(&call<F>) {} // NOLINT: implicit by design
    void write(char* text, std::size_t capacity) const { write_(self_, text, capacity); }

private:
    template <class F>
    static void call(const void* self, char* text, std::size_t capacity) { (*static_cast<const F*>(self))(text, capacity); }
    const void* self_;
    void (*write_)(const void*, char*, std::size_t);
};

// Hands the packed arguments to the handle's runtime; on failure (refused, or, in the emulator, run and
// found faulty) records "KERNEL (grid ..., block ..., ...) failed for PROBLEM: REASON" and returns the
// runtime's status.
cc_status launch_packed(const cc_handle_s& handle, KernelId kernel, const Geometry& geometry, void** args, ArgSizes sizes,
                        void* stream, const ProblemText& text);

// Sets count 32-bit words to value on the stream; on failure records which buffer and problem.
cc_status memset32(const cc_handle_s& handle, void* destination, std::uint32_t value, std::size_t count, void* stream,
                   const ProblemText& text);

namespace detail {

// Whether To{From} is well-formed: brace initialisation refuses narrowing conversions.
template <class To, class From, class = void>
struct converts_exactly : std::false_type {};
template <class To, class From>
struct converts_exactly<To, From, std::void_t<decltype(To{std::declval<From>()})>> : std::true_type {};

// The argument as the kernel's parameter type. The static_assert makes narrowing a hard error (g++ only
// warns about narrowing inside templates).
template <class To, class From>
constexpr To exactly(From&& value)
{
    static_assert(converts_exactly<To, From&&>::value,
                  "a kernel argument does not convert exactly to the parameter type declared in cheapconv/kernels.h "
                  "(narrowing, or dropping const): convert it explicitly after checking it fits");
    return To{std::forward<From>(value)};
}

template <class Signature>
struct Packer;

template <class... P>
struct Packer<void (*)(P...)> {
    template <class... A>
    static cc_status launch(const cc_handle_s& handle, KernelId kernel, const Geometry& geometry, void* stream,
                            const ProblemText& text, A&&... args)
    {
        static_assert(sizeof...(A) == sizeof...(P),
                      "wrong number of kernel arguments: compare the call with the kernel's declaration in cheapconv/kernels.h");
        if constexpr (sizeof...(A) == sizeof...(P)) {
            std::tuple<P...> values{exactly<P>(std::forward<A>(args))...};
            static constexpr std::size_t sizes[] = {sizeof(P)...};
            return std::apply(
                [&](P&... value) {
                    void* pointers[] = {static_cast<void*>(&value)...};
                    return launch_packed(handle, kernel, geometry, pointers, ArgSizes{sizes, sizeof...(P)}, stream, text);
                },
                values);
        } else {
            return CC_ERROR_INTERNAL;
        }
    }
};

} // namespace detail

template <KernelId Id, class... A>
cc_status launch(const cc_handle_s& handle, const Geometry& geometry, void* stream, const ProblemText& text, A&&... args)
{
    return detail::Packer<typename KernelSignature<Id>::type>::launch(handle, Id, geometry, stream, text,
                                                                      std::forward<A>(args)...);
}

} // namespace cc

#endif
