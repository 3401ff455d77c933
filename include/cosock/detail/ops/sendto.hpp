// sendto(buf, address, flags): a sendmsg whose msghdr (in the awaiter) names
// the buffer and the destination.
#pragma once

#include <cosock/detail/ops/common.hpp>

namespace cosock::detail::ops {

inline constexpr op_type sendto{
    .dir = direction::write,
    .moves_data = true,
    .perform = [](io_op& op) noexcept { return sys::sendmsg(op.fd, op.msg, op.flags); },
#ifdef COSOCK_HAS_LIBURING
    .prepare =
        [](io_op& op, io_uring_sqe* sqe) noexcept {
            io_uring_prep_sendmsg(sqe, op.fd, op.msg, unsigned(op.flags | MSG_NOSIGNAL));
        },
    .opcode = IORING_OP_SENDMSG,
#endif
    .dead_end = datagram_without_room,
};

} // namespace cosock::detail::ops
