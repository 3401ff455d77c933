// Time: sleep_for / sleep_until, and with_timeout, a deadline for one call.
//
// Timers live in the scheduler's heap and their nodes in the awaiters: no
// thread and no allocation per timer. All of these work inside a running
// scheduler (scheduler::current()); outside one they throw std::logic_error.
#pragma once

#include <chrono>
#include <coroutine>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include <cosock/detail/timer_heap.hpp>
#include <cosock/detail/wait_slot.hpp>
#include <cosock/error.hpp>
#include <cosock/operation.hpp>
#include <cosock/scheduler.hpp>
#include <cosock/task.hpp>

namespace cosock {

namespace detail {

inline scheduler& running_scheduler(const char* what) {
    scheduler* s = scheduler::current();
    if (!s) throw std::logic_error(std::string("cosock::") + what + ": no scheduler is running on this thread");
    return *s;
}

class sleep_awaiter {
  public:
    /// Until `when`, or (relative) for `delay` from the moment it is awaited.
    struct args {
        loop* where;
        clock::time_point when;
        clock::duration delay;
        bool relative;
    };
    explicit sleep_awaiter(const args& a) : slot_(*a.where), when_(a.relative ? after(a.delay) : a.when) {}

    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        const std::stop_token* token = stop_token_of(h);
        if (token && token->stop_requested()) return !(cancelled_ = true);
        slot_.check_running("sleep");
        slot_.node.handle = h;
        slot_.start_deadline(this, when_);
        slot_.listen(this, token);
        return true;
    }
    void await_resume() {
        slot_.settle();
        if (cancelled_) throw cancelled_error("sleep");
    }

    /// The time has come, or a stop request came first.
    void on_end(end_reason why) noexcept {
        if (why == end_reason::stop) {
            if (!slot_.deadline_pending()) return; // already due
            cancelled_ = true;
            slot_.disarm();
        }
        slot_.resume_soon();
    }

  private:
    wait_slot<sleep_awaiter> slot_;
    clock::time_point when_;
    bool cancelled_ = false;
};

} // namespace detail

/// `co_await sleep_until(t)`: resumes at or after `t`. Throws
/// cancelled_error if the task's stop token is triggered first.
template <class Clock, class Duration>
operation<detail::sleep_awaiter> sleep_until(std::chrono::time_point<Clock, Duration> when) {
    detail::loop& l = detail::loop_of(detail::running_scheduler("sleep_until"));
    return operation<detail::sleep_awaiter>(
        {&l, detail::deadline_after(when - Clock::now(), "sleep_until"), {}, false});
}

/// `co_await sleep_for(d)`: resumes `d` after it is awaited (zero or negative:
/// at the next loop turn, like asyncio.sleep(0)); a value awaited again
/// sleeps again. A NaN duration is std::invalid_argument.
template <class Rep, class Period>
operation<detail::sleep_awaiter> sleep_for(std::chrono::duration<Rep, Period> d) {
    detail::loop& l = detail::loop_of(detail::running_scheduler("sleep_for"));
    return operation<detail::sleep_awaiter>({&l, {}, detail::delay_of(d, "sleep_for"), true});
}

/// Runs `t` with a deadline: when `limit` passes, `t` is stopped (its waiting
/// operations end with cancelled_error) and, once it has ended, the co_await
/// throws cosock::timeout_error, or returns its value if it completed all the
/// same. The caller's own stop token still stops it too (cancelled_error). A
/// negative limit is std::invalid_argument.
template <class T, class Rep, class Period>
task<T> with_timeout(task<T> t, std::chrono::duration<Rep, Period> limit) {
    if (limit < limit.zero()) throw std::invalid_argument("with_timeout: negative limit");
    detail::clock::time_point when = detail::deadline_after(limit, "with_timeout");
    detail::loop& s = detail::loop_of(detail::running_scheduler("with_timeout"));
    // Stopped by the deadline, by the caller's token, or by the task's own.
    // (Each token in a statement of its own: see GCC before 13 in task.hpp.)
    std::stop_token caller = co_await detail::current_stop_token{};
    std::stop_token own = t.valid() ? detail::stop_token_of(t) : std::stop_token{};
    detail::linked_stop_source source(caller, own);

    struct deadline {
        detail::linked_stop_source* source;
        bool fired = false;
        void on_end(detail::end_reason) noexcept {
            fired = true;
            source->request_stop();
        }
    } timer{&source};
    detail::wait_slot<deadline> slot(s);
    slot.start_deadline(&timer, when);

    try {
        co_return co_await std::move(t).with_stop_token(source.get_token());
    } catch (const cancelled_error&) {
        if (timer.fired) throw timeout_error("with_timeout");
        throw;
    }
}

/// with_timeout for a single operation: `co_await with_timeout(sock.recv(buf), 2s)`.
/// The operation is moved into the returned task, which may be kept and
/// awaited later.
template <class Awaiter, class Rep, class Period>
task<decltype(std::declval<Awaiter&>().await_resume())> with_timeout(operation<Awaiter> op,
                                                                     std::chrono::duration<Rep, Period> limit) {
    return with_timeout(detail::as_task(std::move(op)), limit);
}

} // namespace cosock
