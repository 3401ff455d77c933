// sendall(buf, flags): writes until every byte is out; io_op::done keeps the
// progress, so a wait between writes resumes where the last one stopped.
#pragma once

#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>

namespace cosock::detail::ops {

inline constexpr op_type sendall{
    .name = "sendall",
    .dir = direction::write,
    .moves_data = true,
    .perform =
        [](io_op& op) noexcept {
            do {
                int r = sys::send_rest_of(op);
                if (r < 0) return r;
                op.done += std::size_t(r);
            } while (op.done < op.len);
            return 0;
        },
#ifdef COSOCK_HAS_LIBURING
    .prepare =
        [](io_op& op, io_uring_sqe* sqe) noexcept {
            io_uring_prep_send(sqe, op.fd, static_cast<char*>(op.buf) + op.done, sys::cap(op.len - op.done),
                               op.flags | MSG_NOSIGNAL);
        },
    .opcode = IORING_OP_SEND,
#endif
    .progress =
        [](io_op& op, int& res) noexcept {
            if (res < 0) return true;
            op.done += std::size_t(res);
            if (op.done < op.len && res > 0) return false;
            res = 0;
            return true;
        },
};

} // namespace cosock::detail::ops

namespace cosock::detail {

/// `co_await sock.sendall(buf)` → every byte sent, or the exception.
class sendall_awaiter : public op_awaiter {
  public:
    explicit sendall_awaiter(const op_args& a) : op_awaiter(a, ops::sendall) {}
    std::size_t await_resume() {
        result();
        return op().done;
    }
};

} // namespace cosock::detail
