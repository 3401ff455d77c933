// The one operation record every backend runs. It lives inside the awaiter,
// i.e. in the suspended coroutine's frame, so an I/O call never allocates.
// Readiness backends run it with perform() when the descriptor is ready; a
// completion backend turns the same fields into a submission.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <sys/socket.h>

#include <cosock/detail/intrusive_list.hpp>
#include <cosock/detail/sys.hpp>

namespace cosock::detail {

enum class op_state : std::uint8_t {
    idle,    // not known to the scheduler
    waiting, // registered with the backend
    queued,  // completed, in the ready queue
};

/// Something the run loop can resume: linked into the ready queue when due.
/// When `callback` is set the loop calls it instead of resuming `handle`.
struct ready_node : list_node {
    std::coroutine_handle<> handle;
    void (*callback)(ready_node&) = nullptr;
    op_state state = op_state::idle;
};

enum class op_kind : std::uint8_t {
    recv,
    send,
    sendall, // sends until every byte is out; progress kept in io_op::done
    recvmsg, // recvfrom: the sender's address lands in msg->msg_name
    sendmsg, // sendto
    accept,
    connect,       // the first connect() call
    connect_wait,  // connect() said EINPROGRESS: wait for writability, read SO_ERROR
    wait_readable, // pure readiness, nothing to perform
    wait_writable,
};

struct io_op : ready_node {
    int fd = -1;
    op_kind kind = op_kind::recv;
    bool polled = false;    // io_uring: finish through a poll SQE and perform()
    bool aborted = false;   // abort() was asked: do not start another step
    bool timed_out = false; // aborted by its deadline: -ECANCELED reads as -ETIMEDOUT
    bool wait_first = false; // a first try would say EAGAIN: wait for readiness before trying
    int flags = 0;
    int res = 0; // result, or -errno
    void* buf = nullptr;
    std::size_t len = 0;
    std::size_t done = 0;     // sendall: bytes already sent
    msghdr* msg = nullptr;    // recvmsg, sendmsg
    sockaddr* addr = nullptr; // peer address, read (connect) or filled (accept)
    socklen_t addrlen = 0;    // in: size of *addr; out: size the kernel filled
    socklen_t addrcap = 0;    // room for the peer address, so a retry can reset its length
};

inline bool wants_read(op_kind k) noexcept {
    return k == op_kind::recv || k == op_kind::recvmsg || k == op_kind::accept || k == op_kind::wait_readable;
}

inline bool is_send(op_kind k) noexcept { return k == op_kind::send || k == op_kind::sendall; }

/// Runs the operation's system call once; -EAGAIN means "not ready yet".
inline int perform(io_op& op) noexcept {
    switch (op.kind) {
    case op_kind::recv:
        return sys::recv(op.fd, op.buf, op.len, op.flags);
    case op_kind::send:
        return sys::send(op.fd, op.buf, op.len, op.flags);
    case op_kind::sendall:
        do {
            int r = sys::send(op.fd, static_cast<char*>(op.buf) + op.done, op.len - op.done, op.flags);
            if (r < 0) return r;
            op.done += std::size_t(r);
        } while (op.done < op.len);
        return 0;
    case op_kind::recvmsg:
        op.msg->msg_namelen = op.addrcap; // the last attempt may have shrunk it
        return sys::recvmsg(op.fd, op.msg, op.flags);
    case op_kind::sendmsg:
        return sys::sendmsg(op.fd, op.msg, op.flags);
    case op_kind::accept:
        op.addrlen = op.addrcap;
        return sys::accept(op.fd, op.addr, &op.addrlen);
    case op_kind::connect: {
        int r = sys::connect(op.fd, op.addr, op.addrlen);
        if (r != -EINPROGRESS && r != -EALREADY) return r;
        op.kind = op_kind::connect_wait; // the handshake goes on in the kernel
        return -EAGAIN;
    }
    case op_kind::connect_wait: {
        int err = 0;
        socklen_t len = sizeof err;
        int r = sys::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        return r < 0 ? r : -err;
    }
    case op_kind::wait_readable:
    case op_kind::wait_writable:
        return 0;
    }
    return -EINVAL;
}

} // namespace cosock::detail
