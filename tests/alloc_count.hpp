// How many times operator new has run on this thread, for tests that promise
// "no allocation". counting_new.cpp replaces the global operator new.
#pragma once

#include <cstddef>

std::size_t allocations_so_far() noexcept;
