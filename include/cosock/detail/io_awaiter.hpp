// The awaiter every I/O operation shares. It holds the operation record, its
// deadline timer and its stop callback, so a suspended operation costs no
// allocation; if the frame is destroyed while the operation waits, the
// destructor takes all three back from the scheduler.
#pragma once

#include <chrono>
#include <coroutine>
#include <optional>
#include <stop_token>
#include <type_traits>

#include <cosock/detail/io_op.hpp>
#include <cosock/detail/timer_heap.hpp>
#include <cosock/scheduler.hpp>

namespace cosock::detail {

/// A socket's timeout as the awaiters see it: none (wait for ever), zero
/// (never wait: fail with EAGAIN), or a limit for the whole operation.
using timeout_t = std::chrono::nanoseconds;
inline constexpr timeout_t no_timeout{-1};

class io_awaiter {
  public:
    io_awaiter(const io_awaiter&) = delete;
    io_awaiter& operator=(const io_awaiter&) = delete;

    /// Tries the system call at once (readiness path); suspends only on EAGAIN.
    /// With a zero timeout it never suspends: EAGAIN becomes the result.
    bool await_ready() noexcept {
        if (timeout_ == timeout_t::zero()) {
            op_.res = perform(op_);
            return true;
        }
        if (wait_first_ || !sched_->try_inline()) return false;
        op_.res = perform(op_);
        return op_.res != -EAGAIN;
    }

    /// Hands the record to the backend, which resumes us when it completes;
    /// starts the deadline, and listens to the task's stop token.
    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        op_.handle = h;
        sched_->io().arm(op_);
        if (timeout_ > timeout_t::zero()) {
            deadline_.when = clock::now() + timeout_;
            sched_->add_timer(deadline_);
        }
        listen_for_stop(h, on_stop_, abort_on_stop{this});
    }

  protected:
    io_awaiter(scheduler& s, int fd, op_kind kind, timeout_t timeout = no_timeout) noexcept
        : sched_(&s), timeout_(timeout) {
        op_.fd = fd;
        op_.kind = kind;
        deadline_.self = this;
        deadline_.fire = [](timer_node& t) noexcept { static_cast<deadline&>(t).self->abort(true); };
    }
    ~io_awaiter() {
        settle();
        if (op_.state != op_state::idle) sched_->forget(op_);
    }

    /// The op's result once resumed, with the deadline and stop callback gone;
    /// an op aborted by its deadline reads -ETIMEDOUT.
    int settle() noexcept {
        sched_->cancel_timer(deadline_);
        on_stop_.reset();
        if (op_.timed_out && op_.res == -ECANCELED) op_.res = -ETIMEDOUT;
        return op_.res;
    }

    /// A zero timeout: the operation must not wait at all.
    bool never_waits() const noexcept { return timeout_ == timeout_t::zero(); }

    scheduler* sched_;
    io_op op_;
    bool wait_first_ = false; // the first try would say EAGAIN: hand the op to the backend at once

  private:
    struct deadline : timer_node {
        io_awaiter* self;
    };
    struct abort_on_stop {
        io_awaiter* self;
        void operator()() const noexcept { self->abort(false); }
    };

    void abort(bool by_deadline) noexcept {
        if (op_.state != op_state::waiting) return; // already done
        op_.timed_out = by_deadline;
        sched_->io().abort(op_, sched_->ready());
    }

    timeout_t timeout_;
    deadline deadline_;
    std::optional<std::stop_callback<abort_on_stop>> on_stop_;
};

} // namespace cosock::detail
