// accept(): a new non-blocking, close-on-exec descriptor and the peer's
// address, written into room the awaiter holds (op.addr, op.addrcap). The
// awaiter makes a cosock::socket, so it lives in socket.hpp.
#pragma once

#include <cosock/detail/ops/common.hpp>

namespace cosock::detail::ops {

inline constexpr op_type accept{
    .name = "accept",
    .dir = direction::read,
    .yields_fd = true,
    .perform =
        [](io_op& op) noexcept {
            op.addrlen = op.addrcap;
            return sys::accept(op.fd, op.addr, &op.addrlen);
        },
#ifdef COSOCK_HAS_LIBURING
    .prepare =
        [](io_op& op, io_uring_sqe* sqe) noexcept {
            op.addrlen = op.addrcap;
            io_uring_prep_accept(sqe, op.fd, op.addr, &op.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        },
    .opcode = IORING_OP_ACCEPT,
#endif
};

} // namespace cosock::detail::ops
