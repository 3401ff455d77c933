// The test binary's global operator new counts its calls (see alloc_count.hpp),
// over-aligned ones too (the readiness backends' descriptor table). new[],
// nothrow new and the sized deletes default to these.
#include "alloc_count.hpp"

#include <cstdlib>
#include <new>
#include <utility>
#if defined(_WIN32)
#include <malloc.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

// The replacements pair malloc with free; GCC, seeing operator new inlined
// into the probe below, takes that free() for a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
thread_local std::size_t count = 0;
thread_local std::size_t largest = 0;
}

std::size_t allocations_so_far() noexcept { return count; }

std::size_t largest_allocation_since_reset() noexcept { return std::exchange(largest, 0); }

bool allocations_counted() noexcept {
#if __has_include(<valgrind/valgrind.h>)
    if (RUNNING_ON_VALGRIND) return false; // its operator new serves some calls, not all
#endif
    std::size_t before = count;
    // A call, not a new-expression: never elided. The plain form, which this
    // file replaces: the nothrow one is the runtime's (the sanitizer's, under
    // ASan), and freeing its memory here would be a mismatch.
    void* p = ::operator new(1);
    ::operator delete(p);
    return count != before;
}

void* operator new(std::size_t n) {
    ++count;
    if (n > largest) largest = n;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void* operator new(std::size_t n, std::align_val_t align) {
    ++count;
    std::size_t a = std::size_t(align);
#if defined(_WIN32) // no aligned_alloc in its C library; _aligned_free pairs with it
    if (void* p = ::_aligned_malloc(n ? n : 1, a)) return p;
#else
    if (void* p = std::aligned_alloc(a, (n + a - 1) / a * a + (n ? 0 : a))) return p;
#endif
    throw std::bad_alloc();
}
#if defined(_WIN32)
void operator delete(void* p, std::align_val_t) noexcept { ::_aligned_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { ::_aligned_free(p); }
#else
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif
