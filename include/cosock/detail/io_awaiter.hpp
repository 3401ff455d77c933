// The awaiter every I/O operation shares. It holds the operation record, its
// deadline timer and its stop callback, so a suspended operation costs no
// allocation; if the frame is destroyed while the operation waits, the
// destructor takes all three back from the scheduler.
//
// The timer and the stop callback are built only when the operation waits with
// a timeout or under a stop token: an operation without them never writes or
// reads their bytes, which keeps the frame lines each I/O touches few.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
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
        if (op_.wait_first || sched_->submits_untried(op_.kind) || !sched_->try_inline()) return false;
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
            deadline& d = *std::construct_at(&deadline_.value);
            d.self = this;
            d.fire = [](timer_node& t) noexcept { static_cast<deadline&>(t).self->abort(true); };
            d.when = clock::now() + timeout_;
            sched_->add_timer(d);
            extras_ |= has_deadline;
        }
        if constexpr (std::is_base_of_v<promise_base, Promise>) {
            const std::stop_token& token = h.promise().stop;
            if (token.stop_possible()) {
                extras_ |= has_stop_callback; // first: the callback may run (and abort) at once
                std::construct_at(&on_stop_.value, token, abort_on_stop{this});
            }
        }
    }

  protected:
    io_awaiter(scheduler& s, int fd, op_kind kind, timeout_t timeout = no_timeout) noexcept
        : sched_(&s), timeout_(timeout) {
        op_.fd = fd;
        op_.kind = kind;
    }
    ~io_awaiter() {
        settle();
        if (op_.state != op_state::idle) sched_->forget(op_);
    }

    /// The op's result once resumed, with the deadline and stop callback gone;
    /// an op aborted by its deadline reads -ETIMEDOUT.
    int settle() noexcept {
        if (extras_) drop_extras();
        if (op_.timed_out && op_.res == -ECANCELED) op_.res = -ETIMEDOUT;
        return op_.res;
    }

    /// A zero timeout: the operation must not wait at all.
    bool never_waits() const noexcept { return timeout_ == timeout_t::zero(); }

    scheduler* sched_;
    timeout_t timeout_;
    io_op op_;

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

    void drop_extras() noexcept {
        if (extras_ & has_deadline) sched_->cancel_timer(deadline_.value); // a no-op once fired
        if (extras_ & has_stop_callback) std::destroy_at(&on_stop_.value);
        extras_ = 0;
    }

    // Storage for a member built only when needed (extras_ says which are).
    template <class T>
    union built_on_demand {
        built_on_demand() noexcept {}
        ~built_on_demand() {}
        T value;
    };

    static constexpr std::uint8_t has_deadline = 1, has_stop_callback = 2;
    std::uint8_t extras_ = 0;
    built_on_demand<deadline> deadline_;
    built_on_demand<std::stop_callback<abort_on_stop>> on_stop_;
};

} // namespace cosock::detail
