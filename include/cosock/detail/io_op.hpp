// The one operation record every backend runs. It lives inside the awaiter,
// i.e. in the suspended coroutine's frame, so an I/O call never allocates.
// Readiness backends run it with perform() when the descriptor is ready; a
// completion backend turns the same fields into a submission.
#pragma once

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <poll.h>
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

/// Why an operation was ended before the kernel finished it; its -ECANCELED
/// result then reads as the error that reason stands for (see ended_result).
enum class end_reason : std::uint8_t {
    none,
    stop,     // its task's stop token: cosock::cancelled_error
    deadline, // its timeout: -ETIMEDOUT
    closed,   // its descriptor was closed or detached: -EBADF
};

struct io_op : ready_node {
    int fd = -1;
    op_kind kind = op_kind::recv;
    end_reason ended_by = end_reason::none;
    bool polled = false;    // io_uring: finish through a poll SQE and perform()
    bool tried = false;     // the caller found the descriptor not ready just before arming it
    bool foreign = false;   // the descriptor is not cosock's: it may be closed behind the backend's back
    bool submitted = false; // io_uring: its turn has come (not waiting behind an earlier op)
    bool parked = false;    // io_uring: waiting for writability in the backend's epoll set, not in the ring
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

/// The op's result, with an -ECANCELED that an end reason explains turned into
/// that reason's error. A result that came in despite the ending is kept:
/// nothing the kernel did is lost. -ECANCELED is left for a stop request.
inline int ended_result(const io_op& op) noexcept {
    if (op.res != -ECANCELED) return op.res;
    switch (op.ended_by) {
    case end_reason::deadline:
        return -ETIMEDOUT;
    case end_reason::closed:
        return -EBADF;
    default:
        return op.res;
    }
}

/// Which queue of its descriptor an op waits in: reads and writes are each
/// served in the order they were started.
enum class direction : std::uint8_t { read, write };
inline direction direction_of(op_kind k) noexcept {
    return k == op_kind::recv || k == op_kind::recvmsg || k == op_kind::accept || k == op_kind::wait_readable
               ? direction::read
               : direction::write;
}

/// Ops that move a stream's bytes: each waits behind the earlier ones of its
/// direction, so sends leave and receives are served in call order.
inline bool moves_data(op_kind k) noexcept {
    return k == op_kind::recv || k == op_kind::recvmsg || k == op_kind::send || k == op_kind::sendall ||
           k == op_kind::sendmsg;
}

inline bool wants_read(op_kind k) noexcept { return direction_of(k) == direction::read; }

/// An op was told EAGAIN right after its descriptor was reported ready in its
/// direction. True, with `res` set, when no readiness would ever end its wait:
/// - a recv on a socket whose read side is shut down (a datagram socket after
///   shutdown(SHUT_RD) is readable for ever with nothing to read) ends with 0,
///   as a blocking recv does;
/// - a datagram send on a socket the kernel reports writable while the
///   receiver has no room (an unconnected AF_UNIX datagram socket) ends with
///   EAGAIN, as a non-blocking send does: datagrams may be dropped.
/// Otherwise the wake-up was merely spurious and the op waits again.
inline bool dead_end(const io_op& op, int& res) noexcept {
    if (op.kind == op_kind::recv || op.kind == op_kind::recvmsg) {
        pollfd p{op.fd, POLLRDHUP, 0};
        if (sys::poll(&p, 1, 0) != 1 || !(p.revents & POLLRDHUP)) return false;
        res = 0;
        return true;
    }
    if (op.kind == op_kind::send || op.kind == op_kind::sendmsg) {
        int type = 0;
        socklen_t len = sizeof type;
        if (sys::getsockopt(op.fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM) return false;
        res = -EAGAIN;
        return true;
    }
    return false;
}

/// Whether an op that says EAGAIN should wait for readiness. A connect that
/// says EAGAIN (an AF_UNIX listener whose backlog is full) has nothing to wait
/// for: no readiness tells when the backlog has room. It fails with EAGAIN, as
/// Python's connect does.
inline bool waits_on_eagain(const io_op& op) noexcept { return op.kind != op_kind::connect; }

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
    case op_kind::wait_readable: // readiness was reported, perhaps spuriously: the
    case op_kind::wait_writable: // waiter tries its step and arms again, `tried`
        return 0;
    }
    return -EINVAL;
}

} // namespace cosock::detail
