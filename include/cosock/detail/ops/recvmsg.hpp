// recvmsg(bufsize, ancbufsize, flags) and recvmsg_into(buffers, ancbufsize,
// flags): one recvmsg() into one buffer of the awaiter's or several of the
// caller's (scatter), with room for control messages and the sender.
//
// Descriptors passed with SCM_RIGHTS arrive close-on-exec (MSG_CMSG_CLOEXEC).
// If the frame is destroyed after the kernel gave them but before the result
// was taken, nobody will own them: the awaiter closes them.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include <cosock/address.hpp>
#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>
#include <cosock/message.hpp>

namespace cosock::detail::ops {

// op.len is the room for control messages: the kernel shortens the
// msghdr's msg_controllen (and msg_namelen), so each try sets both again.
inline void reset_lengths(io_op& op) noexcept {
    op.msg->msg_namelen = op.addrcap;
    op.msg->msg_controllen = decltype(op.msg->msg_controllen)(op.len);
}

inline constexpr op_type recvmsg{
    .name = "recvmsg",
    .dir = direction::read,
    .moves_data = true,
    .perform =
        [](io_op& op) noexcept {
            reset_lengths(op);
            return sys::recvmsg(op.fd, op.msg, op.flags);
        },
#ifdef COSOCK_HAS_LIBURING
    .prepare =
        [](io_op& op, io_uring_sqe* sqe) noexcept {
            reset_lengths(op);
            io_uring_prep_recvmsg(sqe, op.fd, op.msg, unsigned(op.flags));
        },
    .opcode = IORING_OP_RECVMSG,
#endif
    .dead_end = read_side_shut,
};

/// recv_fds: a recvmsg, named as the caller called it.
inline constexpr op_type recv_fds = [] {
    op_type t = recvmsg;
    t.name = "recv_fds";
    return t;
}();

} // namespace cosock::detail::ops

namespace cosock::detail {

/// What recvmsg, recvmsg_into and recv_fds share: the msghdr, the control
/// buffer and the room for the sender.
class message_receiver : public op_awaiter {
  public:
    struct args {
        op_args op;
        std::size_t ancbufsize = 0;
    };

  protected:
    message_receiver(const args& a, iovec* iov, std::size_t iovlen, const op_type& type = ops::recvmsg)
        : op_awaiter(a.op, type), control_(control_room(a.ancbufsize)) {
        msg_.msg_name = peer_.data();
        msg_.msg_iov = iov;
        msg_.msg_iovlen = decltype(msg_.msg_iovlen)(iovlen);
        msg_.msg_control = a.ancbufsize ? control_.data() : nullptr;
        op().msg = &msg_;
        op().len = a.ancbufsize;
        op().addrcap = address::capacity();
#ifdef MSG_CMSG_CLOEXEC
        op().flags |= MSG_CMSG_CLOEXEC;
#endif
    }
    ~message_receiver() {
#if !COSOCK_WINDOWS
        if (op().state == op_state::queued && op().res >= 0) each_passed_fd(msg_, [](int fd) { sys::close(fd); });
#endif
    }

    /// The bytes received, or the exception; the sender's address is set.
    std::size_t received() {
        std::size_t n = std::size_t(result());
        peer_.resize(msg_.msg_namelen);
        return n;
    }
    /// msg_flags as Python gives them (without the MSG_CMSG_CLOEXEC Linux echoes).
    int msg_flags() const noexcept {
#ifdef MSG_CMSG_CLOEXEC
        return msg_.msg_flags & ~MSG_CMSG_CLOEXEC;
#else
        return msg_.msg_flags;
#endif
    }
    std::vector<ancillary> ancdata() const {
        std::vector<ancillary> items;
#if !COSOCK_WINDOWS
        each_control(msg_, [&](int level, int type, const unsigned char* data, std::size_t size) {
            items.push_back({level, type, std::string(reinterpret_cast<const char*>(data), size)});
        });
#endif
        return items;
    }

    address peer_;
    control_buffer control_;
    msghdr msg_{};
};

/// `co_await sock.recvmsg(bufsize, ancbufsize, flags)` → recvmsg_result.
class recvmsg_awaiter : public message_receiver {
  public:
    struct args {
        message_receiver::args msg;
        std::size_t bufsize = 0;
    };
    explicit recvmsg_awaiter(const args& a, const op_type& type = ops::recvmsg)
        : message_receiver(a.msg, &iov_, 1, type), data_(a.bufsize, '\0') {
        iov_ = {data_.data(), data_.size()};
    }
    recvmsg_result await_resume() {
        data_.resize(received());
        return {std::move(data_), ancdata(), msg_flags(), peer_};
    }

  protected:
    std::string data_;
    iovec iov_{};
};

/// `co_await sock.recvmsg_into(buffers, ancbufsize, flags)` → recvmsg_into_result.
class recvmsg_into_awaiter : public message_receiver {
  public:
    struct args {
        message_receiver::args msg;
        iov_list iov;
    };
    explicit recvmsg_into_awaiter(const args& a) : message_receiver(a.msg, nullptr, 0), iov_(a.iov) {
        msg_.msg_iov = iov_.data();
        msg_.msg_iovlen = decltype(msg_.msg_iovlen)(iov_.size());
    }
    recvmsg_into_result await_resume() {
        std::size_t n = received();
        return {n, ancdata(), msg_flags(), peer_};
    }

  private:
    iov_list iov_;
};

} // namespace cosock::detail
