// send(buf, flags): one write from the caller's buffer, perhaps partial.
#pragma once

#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>

namespace cosock::detail::ops {

inline constexpr op_type send{
    .name = "send",
    .dir = direction::write,
    .moves_data = true,
    .perform = [](io_op& op) noexcept { return sys::send(op.fd, op.buf, op.len, op.flags); },
#ifdef COSOCK_HAS_LIBURING
    .prepare =
        [](io_op& op, io_uring_sqe* sqe) noexcept {
            io_uring_prep_send(sqe, op.fd, op.buf, sys::cap(op.len), op.flags | MSG_NOSIGNAL);
        },
    .opcode = IORING_OP_SEND,
#endif
    .dead_end = datagram_without_room,
};

} // namespace cosock::detail::ops

namespace cosock::detail {

/// `co_await sock.send(buf)` → the bytes sent, perhaps fewer than asked.
class send_awaiter : public op_awaiter {
  public:
    explicit send_awaiter(const op_args& a) : op_awaiter(a, ops::send) {}
    std::size_t await_resume() { return std::size_t(result()); }
};

} // namespace cosock::detail
