// The awaiter every I/O operation shares. It holds the operation record, its
// deadline timer and its stop callback, so a suspended operation costs no
// allocation; if the frame is destroyed while the operation waits, the
// destructor takes all three back from the scheduler.
//
// Where an operation starts is decided in await_suspend, which sees the
// awaiting task: an operation under a stop token already triggered fails with
// cancelled_error before it touches the kernel; otherwise the scheduler says
// whether it is tried at once or handed to the backend untried.
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
#include <string>
#include <type_traits>

#include <cosock/detail/io_op.hpp>
#include <cosock/detail/timer_heap.hpp>
#include <cosock/error.hpp>
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

    bool await_ready() const noexcept { return false; }

    /// For the owner of what the op works on, going away: the op ends as `why`
    /// says, at once if it waits (it resumes through the ready queue), and is
    /// marked so that it touches the owner no more if it already completed.
    /// The owner's slot (see owner_slot_) is forgotten.
    void end(end_reason why) noexcept {
        if (owner_slot_ && *owner_slot_ == this) *owner_slot_ = nullptr;
        owner_slot_ = nullptr;
        if (op_.ended_by == end_reason::none && op_.state != op_state::waiting) op_.ended_by = why;
        abort(why);
    }

    /// Tries the system call at once when the scheduler says so; suspends
    /// only when it must wait, handing the record to the backend, starting
    /// the deadline and listening to the task's stop token.
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        return begin(h, [this] { return op_.res = op_.type->perform(op_); });
    }

  protected:
    io_awaiter(scheduler& s, int fd, const op_type& type, timeout_t timeout = no_timeout) noexcept
        : loop_(&loop_of(s)), timeout_(timeout) {
        op_.fd = fd;
        op_.type = &type;
    }
    ~io_awaiter() {
        if (extras_) drop_extras();
        if (op_.state != op_state::idle) loop_->forget(op_);
    }

    /// await_suspend's work, with `attempt` (→ a result, -EAGAIN for "not
    /// ready") as the one try of the operation. False: it finished without
    /// waiting (op_.res, or the attempt's own record, holds the outcome).
    template <class Promise, class Attempt>
    bool begin(std::coroutine_handle<Promise> h, Attempt attempt) {
        const std::stop_token* token = nullptr;
        if constexpr (std::is_base_of_v<promise_base, Promise>) token = &h.promise().stop;
        if (token && token->stop_requested()) {
            op_.res = -ECANCELED;
            op_.ended_by = end_reason::stop;
            return false;
        }
        start how = loop_->first_step(op_);
        if (timeout_ == timeout_t::zero()) { // never waits; never overtakes the ops waiting ahead
            if (how == start::behind_others)
                op_.res = -EAGAIN;
            else
                attempt();
            return false;
        }
        if (how == start::now) {
            int res = attempt();
            if (res != -EAGAIN || !op_.type->waits_on_eagain) {
                if (drained_by(op_, res)) loop_->io().completed_at_once(op_, res);
                return false;
            }
            op_.tried = true;
        }
        wait(h, token);
        return true;
    }

    /// The op waits: the backend takes it, the deadline starts, the stop
    /// token is listened to. Out of line: the path of an op that completes
    /// at once stays short.
    template <class Promise>
    [[gnu::noinline]] void wait(std::coroutine_handle<Promise> h, const std::stop_token* token) {
        op_.handle = h;
        loop_->io().arm(op_);
        if (timeout_ > timeout_t::zero()) {
            deadline& d = *std::construct_at(&deadline_.value);
            d.self = this;
            d.fire = [](timer_node& t) noexcept { static_cast<deadline&>(t).self->abort(end_reason::deadline); };
            d.when = after(timeout_);
            loop_->add_timer(d);
            extras_ |= has_deadline;
        }
        if (token && token->stop_possible()) {
            extras_ |= has_stop_callback;
            std::construct_at(&on_stop_.value, *token, abort_on_stop{this});
        }
    }

    /// The op's result once resumed, with the deadline and stop callback gone;
    /// an op ended by its deadline reads -ETIMEDOUT, one whose descriptor was
    /// closed -EBADF (see ended_result).
    int settle() noexcept {
        if (extras_) drop_extras();
        return ended_result(op_);
    }

    /// Throws the exception for `res` (< 0): cancelled_error when a stop
    /// request ended the op, else what throw_error() makes of it.
    [[noreturn]] void fail(int res, const std::string& what) const {
        if (res == -ECANCELED && op_.ended_by == end_reason::stop) throw cancelled_error(what);
        throw_error(res, what);
    }

    /// A zero timeout: the operation must not wait at all.
    bool never_waits() const noexcept { return timeout_ == timeout_t::zero(); }

    loop* loop_;
    timeout_t timeout_;
    io_op op_;
    // Where an owner keeps a pointer to this awaiter while it waits, to end()
    // it before going away (file objects); cleared when either goes first.
    io_awaiter** owner_slot_ = nullptr;

  private:
    struct deadline : timer_node {
        io_awaiter* self;
    };
    struct abort_on_stop {
        io_awaiter* self;
        void operator()() const noexcept { self->abort(end_reason::stop); }
    };

    void abort(end_reason why) noexcept {
        if (op_.state != op_state::waiting || op_.ended_by != end_reason::none) return; // done, or ending
        op_.ended_by = why;
        loop_->io().abort(op_, loop_->ready());
    }

    void drop_extras() noexcept {
        if (extras_ & has_deadline) loop_->cancel_timer(deadline_.value); // a no-op once fired
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
