// How many times operator new has run on this thread, for tests that promise
// "no allocation". counting_new.cpp replaces the global operator new.
#pragma once

#include <cstddef>

std::size_t allocations_so_far() noexcept;

/// The largest operator new on this thread since the last call (which resets it).
std::size_t largest_allocation_since_reset() noexcept;

/// False when another operator new runs instead of the counting one (under
/// valgrind, whose own replacement wins): counts would then say nothing.
bool allocations_counted() noexcept;

/// Ends the test case, saying so, when allocations cannot be counted here.
#define SKIP_UNLESS_ALLOCATIONS_COUNTED()                                                                             \
    if (!allocations_counted()) {                                                                                      \
        MESSAGE("SKIPPED: operator new is not the counting one here (valgrind?); nothing to check");                  \
        return;                                                                                                        \
    }
