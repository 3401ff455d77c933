// The awaiters of operations on a socket share this base: built from what the
// operation captured when it was made (op_args), it throws the error a failed
// operation names. Each operation's file (recv.hpp, …) adds its result.
#pragma once

#include <cstddef>
#include <string>

#include <cosock/detail/io_awaiter.hpp>
#include <cosock/detail/io_op.hpp>

namespace cosock::detail {

/// What an operation on a socket takes from it when it is made: not the
/// socket itself, which may be moved or destroyed while the operation waits.
struct op_args {
    loop* where;
    int fd;
    timeout_t timeout;
    void* buf = nullptr;
    std::size_t len = 0;
    int flags = 0;
};

class op_awaiter : public io_awaiter {
  public:
    using args = op_args;

  protected:
    op_awaiter(const op_args& a, const op_type& type) : io_awaiter(*a.where, a.fd, type, a.timeout) {
        op().buf = a.buf;
        op().len = a.len;
        op().flags = a.flags;
    }
    /// The result, or the exception for a failure.
    [[gnu::always_inline]] int result() {
        int res = settle();
        if (res < 0) fail(res, op().type->name);
        return res;
    }
};

} // namespace cosock::detail
