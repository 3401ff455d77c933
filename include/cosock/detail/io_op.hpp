// The operation record every backend runs, and op_type, what an operation
// is. The record lives inside the awaiter, i.e. in the suspended coroutine's
// frame, so an I/O call never allocates. Its `type` (one constant per
// operation, in detail/ops/) says how it runs: a readiness backend calls
// type->perform when the descriptor is ready; the io_uring backend has
// type->prepare fill a submission. Backends read nothing else of an
// operation's kind: adding an operation adds one file under detail/ops/.
//
// Used by the awaiters (io_awaiter and those built on it) and the backends.
#pragma once

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cosock/detail/platform.hpp>

#include <cosock/detail/intrusive_list.hpp>

struct io_uring_sqe; // liburing's; only the io_uring backend fills one

namespace cosock::detail {

enum class op_state : std::uint8_t {
    idle,    // not known to the scheduler
    waiting, // registered with the backend
    queued,  // completed, in the ready queue
    posted,  // handed to a scheduler from another thread, not yet in its ready queue
};

/// Something the run loop can resume: linked into the ready queue when due.
/// When `callback` is set the loop calls it instead of resuming `handle`.
struct ready_node : list_node {
    std::coroutine_handle<> handle;
    void (*callback)(ready_node&) = nullptr;
    op_state state = op_state::idle;
};

/// Why an operation was ended before the kernel finished it; its -ECANCELED
/// result then reads as the error that reason stands for (see ended_result).
enum class end_reason : std::uint8_t {
    none,
    stop,     // its task's stop token: cosock::cancelled_error
    deadline, // its timeout: -ETIMEDOUT
    closed,   // its descriptor was closed or detached: -EBADF
};

/// Which queue of its descriptor an op waits in: reads and writes are each
/// served in the order they were started.
enum class direction : std::uint8_t { read, write };

struct io_op;

/// What an operation is and how each backend family runs it.
struct op_type {
    /// The operation as error messages name it ("recv", …).
    const char* name = "";
    direction dir = direction::read;
    /// It moves a stream's bytes: it waits behind the earlier ops of its
    /// direction, so sends leave and receives are served in call order.
    bool moves_data = false;
    /// A result that fills less than the buffer means the receive queue was
    /// empty a moment ago (a stream recv without MSG_PEEK): a hint backends
    /// may keep to wait before the next try.
    bool short_means_drained = false;
    /// Its result, when not negative, is a new descriptor: closed when the
    /// op's frame is gone and nobody will take it.
    bool yields_fd = false;
    /// What an op says EAGAIN to: true, wait for readiness and try again;
    /// false, fail with EAGAIN (nothing would tell when to try again).
    bool waits_on_eagain = true;
    /// Its wait may end with an error and no readiness (a connect whose
    /// handshake fails): Windows' select() reports that in the exception set
    /// only, which for other sockets means urgent data.
    bool ends_on_error = false;
    /// One non-blocking try; -EAGAIN means not ready yet. Readiness backends
    /// call it when the descriptor is ready, io_uring after a poll.
    int (*perform)(io_op&) noexcept = nullptr;
    /// Fills an io_uring submission doing the whole step, or nullptr: io_uring
    /// then waits for readiness with a poll and calls perform().
    void (*prepare)(io_op&, io_uring_sqe*) noexcept = nullptr;
    /// The io_uring opcode prepare() needs; a kernel without it runs the op
    /// through a poll and perform() instead.
    int opcode = -1;
    /// A completed step's result: true when the op is done (`res` its
    /// result), false when another step must follow (the rest of a sendall).
    /// nullptr: every step is the last.
    bool (*progress)(io_op&, int& res) noexcept = nullptr;
    /// The op was told EAGAIN just after its descriptor was reported ready:
    /// true, with `res` set, when no readiness would ever end its wait (see
    /// ops/common.hpp). nullptr: a spurious wake-up, wait again.
    bool (*dead_end)(const io_op&, int& res) noexcept = nullptr;
    /// What the op continues as once the kernel says it is in progress
    /// (EINPROGRESS, EALREADY): a connect waits for its handshake. nullptr:
    /// itself, retried on readiness.
    const op_type* in_progress = nullptr;
};

struct io_op : ready_node {
    const op_type* type = nullptr;
    int fd = -1;
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

/// True when a completed step of `op` with result `res` filled less than its
/// buffer in a way that says the receive queue is empty (see op_type).
[[gnu::always_inline]] inline bool drained_by(const io_op& op, int res) noexcept {
    return op.type->short_means_drained && res > 0 && std::size_t(res) < op.len && !(op.flags & MSG_PEEK);
}

} // namespace cosock::detail
