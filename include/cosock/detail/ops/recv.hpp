// recv(buf, flags): one read into the caller's buffer; recv(n, flags): one
// read into a string of the awaiter's, returned.
#pragma once

#include <string>
#include <utility>

#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>

namespace cosock::detail::ops {

inline int perform_recv(io_op& op) noexcept { return sys::recv_of(op); }

/// A recv on a datagram socket (or any other not a stream).
inline constexpr op_type recv{
    .name = "recv",
    .dir = direction::read,
    .moves_data = true,
    .perform = perform_recv,
#ifdef COSOCK_HAS_LIBURING
    .prepare = [](io_op& op,
                  io_uring_sqe* sqe) noexcept { io_uring_prep_recv(sqe, op.fd, op.buf, sys::cap(op.len), op.flags); },
    .opcode = IORING_OP_RECV,
#endif
    .dead_end = read_side_shut,
};

/// A recv on a stream socket: a short read says the queue was drained.
inline constexpr op_type stream_recv = [] {
    op_type t = recv;
    t.short_means_drained = true;
    return t;
}();

} // namespace cosock::detail::ops

namespace cosock::detail {

/// `co_await sock.recv(buf)` → the bytes received.
class recv_awaiter : public op_awaiter {
  public:
    struct args {
        op_args op;
        bool stream; // a stream socket: a short read says the queue was drained
    };
    explicit recv_awaiter(const args& a) : op_awaiter(a.op, a.stream ? ops::stream_recv : ops::recv) {}
    std::size_t await_resume() { return std::size_t(result()); }
};

} // namespace cosock::detail

namespace cosock::detail {

/// `co_await sock.recv(n)` → a string of the bytes received, at most n.
class recv_bytes_awaiter : public recv_awaiter {
  public:
    /// op.len is n; op.buf is set to the string's bytes here.
    explicit recv_bytes_awaiter(const args& a) : recv_awaiter(a), data_(a.op.len, '\0') { op().buf = data_.data(); }
    std::string await_resume() {
        data_.resize(recv_awaiter::await_resume());
        return std::move(data_);
    }

  private:
    std::string data_;
};

} // namespace cosock::detail
