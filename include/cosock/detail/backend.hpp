// The seam between the scheduler and the operating system. There is one virtual
// call per arm/wait, never one per byte; each backend completes operations by
// setting io_op::res and linking the op into the ready queue.
#pragma once

#include <chrono>
#include <cstddef>

#include <cosock/detail/intrusive_list.hpp>
#include <cosock/detail/io_op.hpp>

namespace cosock::detail {

using ready_queue = intrusive_list<ready_node>;

inline void complete(io_op& op, int res, ready_queue& ready) noexcept {
    op.res = res;
    op.state = op_state::queued;
    ready.push_back(op);
}

class backend {
  public:
    virtual ~backend() = default;
    virtual const char* name() const noexcept = 0;
    /// Starts waiting for `op` (its first attempt said -EAGAIN). May throw,
    /// leaving nothing registered.
    virtual void arm(io_op& op) = 0;
    /// Forgets a waiting op without resuming it (its frame is going away).
    /// Returns only once the kernel is done with the op's buffers; other ops
    /// that complete meanwhile are queued on `ready`.
    virtual void cancel(io_op& op, ready_queue& ready) noexcept = 0;
    /// Makes a waiting op complete soon with -ECANCELED (a deadline passed or
    /// a stop was requested); the op still resumes through the ready queue.
    virtual void abort(io_op& op, ready_queue& ready) noexcept = 0;
    /// The descriptor leaves cosock: it is being closed, or detached and handed
    /// to the user. Every op waiting on it completes with -ECANCELED (once the
    /// kernel has let go of its buffer) and the backend forgets the fd.
    virtual void release_fd(int fd, bool closing, ready_queue& ready) noexcept = 0;
    /// A recv on the stream socket `fd` came back short: its receive queue was
    /// empty a moment ago. A backend that remembers readiness forgets it here,
    /// so the next recv waits for new data instead of trying first.
    virtual void recv_drained(int /*fd*/) noexcept {}
    /// Blocks up to timeout_ms (-1: no limit) and queues what completed.
    virtual void wait(ready_queue& ready, int timeout_ms) = 0;
    /// How many ops are waiting.
    virtual std::size_t waiting() const noexcept = 0;

    /// Whether a send goes to the backend untried, for a backend that takes
    /// sends as submissions. It must while another send is in flight (a direct
    /// one could overtake it); it should while other tasks are ready, as it
    /// then rides the loop's next system call with theirs. A task that runs
    /// alone sends at once, which is quicker for it.
    bool submits_send(bool others_ready) const noexcept {
        return submits_sends_ && (others_ready || sends_in_flight_ > 0);
    }

  protected:
    bool submits_sends_ = false;
    std::size_t sends_in_flight_ = 0;
};

/// Milliseconds left until `deadline`, for retrying an interrupted wait.
inline int remaining_ms(std::chrono::steady_clock::time_point deadline) noexcept {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? int(left.count()) : 0;
}

} // namespace cosock::detail
