// sendmsg(buffers, ancdata, flags, address): one sendmsg() over several
// buffers (gather), with control messages and a destination, perhaps partial
// on a stream as send is. The iovec list and the control buffer are built when
// the operation is made (message.hpp) and kept in the awaiter.
#pragma once

#include <optional>
#include <utility>

#include <cosock/address.hpp>
#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>
#include <cosock/detail/ops/sendto.hpp>
#include <cosock/message.hpp>

namespace cosock::detail::ops {

inline constexpr op_type sendmsg = [] {
    op_type t = sendto;
    t.name = "sendmsg";
    return t;
}();

} // namespace cosock::detail::ops

namespace cosock::detail {

/// `co_await sock.sendmsg(buffers, ancdata, flags, address)` → the bytes sent.
class sendmsg_awaiter : public op_awaiter {
  public:
    struct args {
        op_args op;
        iov_list iov;
        control_buffer control;
        std::size_t controllen = 0;
        std::optional<address> to;
    };
    explicit sendmsg_awaiter(args a)
        : op_awaiter(a.op, ops::sendmsg), iov_(a.iov), control_(std::move(a.control)), to_(a.to.value_or(address())) {
        msg_.msg_iov = iov_.data();
        msg_.msg_iovlen = decltype(msg_.msg_iovlen)(iov_.size());
        if (a.to) {
            msg_.msg_name = to_.data();
            msg_.msg_namelen = to_.size();
        }
        if (a.controllen) {
            msg_.msg_control = control_.data();
            msg_.msg_controllen = decltype(msg_.msg_controllen)(a.controllen);
        }
        op().msg = &msg_;
        op().len = iov_.total();
    }
    std::size_t await_resume() { return std::size_t(result()); }

  private:
    iov_list iov_;
    control_buffer control_;
    address to_;
    msghdr msg_{};
};

} // namespace cosock::detail
