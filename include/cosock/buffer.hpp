// What cosock accepts as a buffer: any contiguous range of bytes. Shared by
// socket (send, recv, …) and file_object (write, readinto).
#pragma once

#include <concepts>
#include <cstddef>
#include <ranges>
#include <type_traits>

namespace cosock {

/// An element type a buffer may have: char, unsigned char, signed char or std::byte.
template <class T>
concept byte_like = std::same_as<T, char> || std::same_as<T, unsigned char> || std::same_as<T, signed char> ||
    std::same_as<T, std::byte>;

/// Any contiguous range of bytes to read from: std::string, std::string_view,
/// std::vector, std::array, std::span. Built-in arrays are refused: a string
/// literal would send its terminating NUL (wrap it in std::string_view).
template <class R>
concept const_buffer = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
    byte_like<std::remove_cv_t<std::ranges::range_value_t<R>>> && !std::is_array_v<std::remove_cvref_t<R>>;

/// Any contiguous, writable range of bytes to receive into.
template <class R>
concept mutable_buffer =
    std::ranges::contiguous_range<R> && std::ranges::sized_range<R> && byte_like<std::ranges::range_value_t<R>> &&
    !std::is_const_v<std::remove_reference_t<std::ranges::range_reference_t<R>>>;

} // namespace cosock
