// io_backend: the seam between the scheduler and the operating system, which
// select, poll, epoll and io_uring implement. The scheduler's loop calls wait();
// the awaiters call first_step, arm, cancel and abort; sockets call release_fd.
// There is at most one virtual call per arm/wait, never one per byte (the
// scheduler calls a readiness backend's first_step and epoll's arm directly,
// knowing which backend it made); each backend
// completes operations by setting io_op::res and linking the op into the
// ready queue.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <pthread.h>
#include <stdexcept>

#include <cosock/detail/intrusive_list.hpp>
#include <cosock/detail/io_op.hpp>
#include <cosock/detail/sys.hpp>

namespace cosock::detail {

using ready_queue = intrusive_list<ready_node>;

inline void complete(io_op& op, int res, ready_queue& ready) noexcept {
    op.res = res;
    op.state = op_state::queued;
    ready.push_back(op);
}

/// How many times this process is a fork() child of a process that had
/// created a backend: a backend made in an earlier generation belongs to an
/// ancestor, whose epoll set or ring it shares. Counted once
/// count_fork_generations() has run (every backend's constructor calls it).
inline std::atomic<std::uint64_t> fork_generation{0};
inline void count_fork_generations() noexcept {
    static const bool registered = [] {
#if !COSOCK_WINDOWS // no fork() there
        ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
#endif
        return true;
    }();
    (void)registered;
}

/// See io_backend::first_step.
enum class start : std::uint8_t { now, behind_others, untried };

class io_backend {
  public:
    virtual ~io_backend() = default;
    virtual const char* name() const noexcept = 0;
    /// How `op`, just started, begins: tried at once, or handed to arm()
    /// untried because ops of its direction wait ahead of it on the same
    /// descriptor (behind_others), or because the backend expects the try to
    /// say EAGAIN or a submission to cost less (untried). `others_ready`:
    /// other tasks run in this loop turn.
    virtual start first_step(const io_op& op, bool others_ready) noexcept = 0;
    /// Starts waiting for `op`; `op.tried` says whether its descriptor was
    /// just found not ready. May throw, leaving nothing registered.
    virtual void arm(io_op& op) = 0;
    /// Forgets a waiting op without resuming it (its frame is going away).
    /// Returns only once the kernel is done with the op's buffers; other ops
    /// that complete meanwhile are queued on `ready`.
    virtual void cancel(io_op& op, ready_queue& ready) noexcept = 0;
    /// Makes a waiting op complete soon with -ECANCELED (its `ended_by` says
    /// why); the op still resumes through the ready queue.
    virtual void abort(io_op& op, ready_queue& ready) noexcept = 0;
    /// The descriptor leaves cosock: it is being closed, or detached and handed
    /// to the user. Every op waiting on it completes with -ECANCELED, ended by
    /// `closed` (once the kernel has let go of its buffer), and the backend
    /// forgets the fd.
    virtual void release_fd(int fd, bool closing, ready_queue& ready) noexcept = 0;
    /// `op` completed at its first try, with `res`, without being armed.
    /// Called only when the result teaches something (drained_by: a short
    /// read): a backend that guesses whether a try would say EAGAIN learns
    /// from it.
    virtual void completed_at_once(const io_op& /*op*/, int /*res*/) noexcept {}
    /// Blocks up to timeout_ms (-1: no limit) and queues what completed.
    virtual void wait(ready_queue& ready, int timeout_ms) = 0;
    /// How many ops are waiting.
    virtual std::size_t waiting() const noexcept = 0;
    /// Completes every waiting op with -ECANCELED, in as few kernel round
    /// trips as it can: the scheduler is going away with their frames.
    virtual void cancel_all(ready_queue& ready) noexcept = 0;
    /// A run() starts on this thread. A backend bound to one thread (io_uring:
    /// a single issuer) binds to the first, and throws std::logic_error on
    /// another.
    virtual void bind_thread() {}

    /// True in a fork() child of the process that made the backend: the
    /// kernel objects behind it (an epoll set, a ring) are shared with the
    /// parent, so it must not change them. It only forgets: ops fail with
    /// std::logic_error, and destroying it frees memory and closes its own
    /// descriptors. One relaxed atomic load: cheap enough for every operation.
    bool orphaned() const noexcept { return born_ != fork_generation.load(std::memory_order_relaxed); }
    /// What using an orphaned backend throws.
    [[noreturn]] static void refuse_after_fork() {
        throw std::logic_error("cosock: this scheduler was created before fork(), and a scheduler does not "
                               "survive fork(): create a new one in the child");
    }

  protected:
    io_backend() noexcept { count_fork_generations(); }

  private:
    std::uint64_t born_ = fork_generation.load(std::memory_order_relaxed);
};

/// Makes a per-descriptor table hold `fd` (at sys::slot(fd)). It grows by
/// doubling, from 64 entries, so that the descriptors a process opens next
/// rarely grow it again (a new connection costs no allocation).
template <class Table>
void hold_fd(Table& table, int fd) {
    std::size_t at = sys::slot(fd);
    if (at < table.size()) return;
    std::size_t n = std::max<std::size_t>(64, table.size());
    while (n <= at) n *= 2;
    table.resize(n);
}

/// Milliseconds left until `deadline`, for retrying an interrupted wait.
/// At most INT_MAX (24.8 days): a wait that long ends early and is made again.
inline int remaining_ms(std::chrono::steady_clock::time_point deadline) noexcept {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() <= 0 ? 0 : left.count() >= INT_MAX ? INT_MAX : int(left.count());
}

} // namespace cosock::detail
