// recvfrom(buf, flags): a recvmsg whose msghdr (in the awaiter) names the
// buffer and the room for the sender's address.
#pragma once

#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>
#include <cosock/detail/ops/message.hpp>

namespace cosock::detail::ops {

inline constexpr op_type recvfrom{
    .name = "recvfrom",
    .dir = direction::read,
    .moves_data = true,
    .perform =
        [](io_op& op) noexcept {
            op.msg->msg_namelen = op.addrcap; // the last attempt may have shrunk it
            return sys::recvmsg(op.fd, op.msg, op.flags);
        },
#ifdef COSOCK_HAS_LIBURING
    .prepare =
        [](io_op& op, io_uring_sqe* sqe) noexcept {
            op.msg->msg_namelen = op.addrcap;
            io_uring_prep_recvmsg(sqe, op.fd, op.msg, unsigned(op.flags));
        },
    .opcode = IORING_OP_RECVMSG,
#endif
    .dead_end = read_side_shut,
};

} // namespace cosock::detail::ops

namespace cosock::detail {

/// `co_await sock.recvfrom(buf)` → recvfrom_result{size, address}.
class recvfrom_awaiter : public message_awaiter {
  public:
    explicit recvfrom_awaiter(const op_args& a) : message_awaiter(a, ops::recvfrom, address(), address::capacity()) {}
    recvfrom_result await_resume() {
        std::size_t n = std::size_t(result());
        peer_.resize(msg_.msg_namelen);
        return {n, peer_};
    }
};

} // namespace cosock::detail
