// The awaiter every I/O operation shares. It holds the operation record in its
// wait slot (with the deadline timer and stop callback), so a suspended
// operation costs no allocation; if the frame is destroyed while the
// operation waits, the slot takes all three back from the scheduler.
//
// Where an operation starts is decided in await_suspend, which sees the
// awaiting task: an operation under a stop token already triggered fails with
// cancelled_error before it touches the kernel; otherwise the backend says
// whether it is tried at once, waits behind others, or goes to the kernel
// untried (loop::first_step).
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
#include <cosock/detail/wait_slot.hpp>
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
        if (op().ended_by == end_reason::none && op().state != op_state::waiting) op().ended_by = why;
        on_end(why);
    }

    /// Tries the system call at once when the backend says so; suspends
    /// only when it must wait, handing the record to the backend, starting
    /// the deadline and listening to the task's stop token.
    template <class Promise>
    [[gnu::always_inline]] bool await_suspend(std::coroutine_handle<Promise> h) {
        return begin(h, [this] { return op().res = op().type->perform(op()); });
    }

    /// Its deadline passed, its stop token was triggered, or its owner goes:
    /// a waiting op ends at once (it resumes through the ready queue).
    void on_end(end_reason why) noexcept {
        io_op& o = op();
        if (o.state != op_state::waiting || o.ended_by != end_reason::none) return; // done, or ending
        o.ended_by = why;
        event_loop().io().abort(o, event_loop().ready());
    }

  protected:
    io_awaiter(loop& l, int fd, const op_type& type, timeout_t timeout = no_timeout) noexcept
        : timeout_(timeout), slot_(l) {
        op().fd = fd;
        op().type = &type;
    }
    ~io_awaiter() = default; // the slot takes everything back

    io_op& op() noexcept { return slot_.node; }
    const io_op& op() const noexcept { return slot_.node; }
    loop& event_loop() const noexcept { return slot_.owner_loop(); }

    /// await_suspend's work, with `attempt` (→ a result, -EAGAIN for "not
    /// ready") as the one try of the operation. False: it finished without
    /// waiting (op().res, or the attempt's own record, holds the outcome).
    template <class Promise, class Attempt>
    [[gnu::always_inline]] bool begin(std::coroutine_handle<Promise> h, Attempt attempt) {
        io_op& o = op();
        const std::stop_token* token = stop_token_of(h);
        // Most tasks have no stop source: one test of the token says so.
        bool stoppable = token && token->stop_possible();
        if (stoppable && token->stop_requested()) {
            o.res = -ECANCELED;
            o.ended_by = end_reason::stop;
            return false;
        }
        slot_.check_running("a socket operation");
        start how = event_loop().first_step(o);
        if (timeout_ == timeout_t::zero()) { // never waits; never overtakes the ops waiting ahead
            if (how == start::behind_others)
                o.res = -EAGAIN;
            else
                attempt();
            return false;
        }
        if (how == start::now) {
            int res = attempt();
            if (res != -EAGAIN || !o.type->waits_on_eagain) {
                if (drained_by(o, res)) event_loop().io().completed_at_once(o, res);
                return false;
            }
            o.tried = true;
        }
        if (timeout_ <= timeout_t::zero() && !stoppable) [[likely]] {
            o.handle = h; // no deadline, no stop callback: the rest of wait()
            event_loop().arm(o);
        } else {
            wait(h, token);
        }
        return true;
    }

    /// The op waits: the backend takes it, the deadline starts, the stop
    /// token is listened to. Out of line, for an op with a deadline or a
    /// stop token that can be triggered: begin() hands any other op to the
    /// backend itself.
    template <class Promise>
    [[gnu::noinline]] void wait(std::coroutine_handle<Promise> h, const std::stop_token* token) {
        op().handle = h;
        event_loop().arm(op());
        if (timeout_ > timeout_t::zero()) slot_.start_deadline(this, after(timeout_));
        slot_.listen(this, token);
    }

    /// The op's result once resumed, with the deadline and stop callback gone;
    /// an op ended by its deadline reads -ETIMEDOUT, one whose descriptor was
    /// closed -EBADF (see ended_result).
    [[gnu::always_inline]] int settle() noexcept {
        slot_.disarm();
        return ended_result(op());
    }

    /// Throws the exception for `res` (< 0): cancelled_error when a stop
    /// request ended the op, else what throw_error() makes of it.
    [[noreturn]] void fail(int res, const std::string& what) const {
        if (res == -ECANCELED && op().ended_by == end_reason::stop) throw cancelled_error(what);
        throw_error(res, what);
    }

    /// A zero timeout: the operation must not wait at all.
    bool never_waits() const noexcept { return timeout_ == timeout_t::zero(); }

    timeout_t timeout_;
    // Where an owner keeps a pointer to this awaiter while it waits, to end()
    // it before going away (file objects); cleared when either goes first.
    io_awaiter** owner_slot_ = nullptr;

  private:
    wait_slot<io_awaiter, io_op> slot_;
};

} // namespace cosock::detail
