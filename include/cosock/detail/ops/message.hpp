// The base of recvfrom and sendto, which run as recvmsg and sendmsg: the
// msghdr, the iovec and the peer address all live here, in the frame, for the
// kernel to use.
#pragma once

#include <cosock/detail/platform.hpp>

#include <cosock/address.hpp>
#include <cosock/detail/ops/awaiter.hpp>

namespace cosock::detail {

class message_awaiter : public op_awaiter {
  protected:
    /// `peer`: the destination, or room for the sender; `namelen`: its size.
    message_awaiter(const op_args& a, const op_type& type, const address& peer, socklen_t namelen)
        : op_awaiter(a, type), peer_(peer) {
        iov_ = {a.buf, sys::cap(a.len)};
        msg_.msg_name = peer_.data();
        msg_.msg_namelen = namelen;
        msg_.msg_iov = &iov_;
        msg_.msg_iovlen = 1;
        op().msg = &msg_;
        op().addrcap = namelen;
    }
    address peer_;
    iovec iov_;
    msghdr msg_{};
};

} // namespace cosock::detail
