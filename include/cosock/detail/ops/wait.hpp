// Pure readiness, for file objects (retry_awaiter), select() and the
// scheduler's wake-up descriptor: nothing to perform. A reported readiness may be spurious;
// the waiter tries its own step (a file object's read, select's poll) and
// waits again, armed `tried`.
#pragma once

#include <cosock/detail/ops/common.hpp>

namespace cosock::detail::ops {

inline int nothing_to_do(io_op&) noexcept { return 0; }

inline constexpr op_type wait_readable{.dir = direction::read, .perform = nothing_to_do};
inline constexpr op_type wait_writable{.dir = direction::write, .perform = nothing_to_do};
/// A wait to receive from a stream with a step of one's own (see
/// retry_awaiter): a receive that fills less than the op's `len` says the
/// queue was drained.
inline constexpr op_type wait_readable_stream{
    .dir = direction::read, .short_means_drained = true, .perform = nothing_to_do};

} // namespace cosock::detail::ops
