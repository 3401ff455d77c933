// connect(address): the first connect() call, then, while the kernel says
// the handshake is in progress, a wait for writability that reads SO_ERROR.
#pragma once

#include <cosock/address.hpp>
#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>

namespace cosock::detail::ops {

/// The handshake goes on in the kernel: writability ends it, SO_ERROR says how.
inline constexpr op_type connect_wait{
    .name = "connect",
    .dir = direction::write,
    .ends_on_error = true,
    .perform =
        [](io_op& op) noexcept { return sys::pending_error(op.fd); },
};

/// A connect that says EAGAIN (an AF_UNIX listener whose backlog is full)
/// has nothing to wait for: no readiness tells when the backlog has room. It
/// fails with EAGAIN, as Python's connect does.
inline constexpr op_type connect{
    .name = "connect",
    .dir = direction::write,
    .waits_on_eagain = false,
    .perform =
        [](io_op& op) noexcept {
            int r = sys::connect(op.fd, op.addr, op.addrlen);
            if (r != -EINPROGRESS && r != -EALREADY) return r;
            op.type = &connect_wait;
            return -EAGAIN;
        },
#ifdef COSOCK_HAS_LIBURING
    .prepare = [](io_op& op, io_uring_sqe* sqe) noexcept { io_uring_prep_connect(sqe, op.fd, op.addr, op.addrlen); },
    .opcode = IORING_OP_CONNECT,
#endif
    .in_progress = &connect_wait,
};

} // namespace cosock::detail::ops

namespace cosock::detail {

/// `co_await sock.connect(address)`: done once connected, else the exception.
class connect_awaiter : public op_awaiter {
  public:
    struct args {
        op_args op;
        address to;
    };
    explicit connect_awaiter(const args& a) : op_awaiter(a.op, ops::connect), to_(a.to) {
        op().addr = to_.data();
        op().addrlen = to_.size();
    }
    void await_resume() {
        if (int res = settle(); res < 0) fail(res, "connect to " + to_.to_string());
    }

  private:
    address to_;
};

/// `co_await sock.connect_ex(address)`: Python's connect_ex, the errno in place
/// of the exception (0: connected; a timeout is ETIMEDOUT, where Python says
/// EWOULDBLOCK). A stop request still throws cancelled_error: it is the
/// caller's doing, not the connection's.
class connect_ex_awaiter : public connect_awaiter {
  public:
    using connect_awaiter::connect_awaiter;
    int await_resume() {
        int res = settle();
        if (res == -ECANCELED && op().ended_by == end_reason::stop) throw cancelled_error("connect_ex");
        return res < 0 ? -res : 0;
    }
};

} // namespace cosock::detail
