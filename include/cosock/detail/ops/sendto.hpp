// sendto(buf, address, flags): a sendmsg whose msghdr (in the awaiter) names
// the buffer and the destination.
#pragma once

#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>
#include <cosock/detail/ops/message.hpp>

namespace cosock::detail::ops {

inline constexpr op_type sendto{
    .name = "sendto",
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

namespace cosock::detail {

/// `co_await sock.sendto(buf, address)` → the bytes sent (a whole datagram).
class sendto_awaiter : public message_awaiter {
  public:
    struct args {
        op_args op;
        address to; // a copy: the caller's may be a temporary
    };
    explicit sendto_awaiter(const args& a) : message_awaiter(a.op, ops::sendto, a.to, a.to.size()) {}
    std::size_t await_resume() { return std::size_t(result()); }
};

} // namespace cosock::detail
