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
#include <cosock/error.hpp>
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
    explicit sleep_awaiter(clock::time_point when) : loop_(&loop_of(running_scheduler("sleep"))) {
        timer_.when = when;
        timer_.self = this;
        timer_.fire = [](timer_node& t) noexcept {
            sleep_awaiter& self = *static_cast<node&>(t).self;
            self.loop_->schedule(self.wake_);
        };
    }
    sleep_awaiter(const sleep_awaiter&) = delete;
    ~sleep_awaiter() { settle(); }

    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if constexpr (std::is_base_of_v<promise_base, Promise>)
            if (h.promise().stop.stop_requested()) return !(cancelled_ = true);
        wake_.handle = h;
        loop_->add_timer(timer_);
        listen_for_stop(h, on_stop_, wake_early{this});
        return true;
    }
    void await_resume() {
        settle();
        if (cancelled_) throw cancelled_error("sleep");
    }

  private:
    struct node : timer_node {
        sleep_awaiter* self;
    };
    struct wake_early {
        sleep_awaiter* self;
        void operator()() const noexcept {
            if (!self->timer_.armed()) return; // already due
            self->loop_->cancel_timer(self->timer_);
            self->cancelled_ = true;
            self->loop_->schedule(self->wake_);
        }
    };
    void settle() noexcept {
        on_stop_.reset();
        loop_->cancel_timer(timer_);
        if (wake_.state == op_state::queued) loop_->ready().erase(wake_);
    }

    loop* loop_;
    node timer_;
    ready_node wake_;
    bool cancelled_ = false;
    std::optional<std::stop_callback<wake_early>> on_stop_;
};

// Awaited as an lvalue: GCC would copy an xvalue operand, and awaiters are
// not copyable (the kernel may hold their address).
template <class Awaitable>
auto as_task(Awaitable&& a) -> task<decltype(std::declval<Awaitable&>().await_resume())> {
    co_return co_await static_cast<Awaitable&>(a);
}

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

} // namespace detail

/// `co_await sleep_until(t)`: resumes at or after `t`. Throws
/// cancelled_error if the task's stop token is triggered first.
template <class Clock, class Duration>
detail::sleep_awaiter sleep_until(std::chrono::time_point<Clock, Duration> when) {
    return detail::sleep_awaiter(detail::deadline_after(when - Clock::now(), "sleep_until"));
}

/// `co_await sleep_for(d)`: resumes after `d` (zero or negative: at the next
/// loop turn, like asyncio.sleep(0)). A NaN duration is std::invalid_argument.
template <class Rep, class Period>
detail::sleep_awaiter sleep_for(std::chrono::duration<Rep, Period> d) {
    return detail::sleep_awaiter(detail::deadline_after(d, "sleep_for"));
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
    // (Each token in a statement of its own: see current_stop_token.)
    std::stop_token caller = co_await detail::current_stop_token{};
    std::stop_token own = t.valid() ? detail::stop_token_of(t) : std::stop_token{};
    detail::linked_stop_source source(caller, own);

    struct deadline : detail::timer_node {
        detail::linked_stop_source* source;
        bool fired = false;
    } timer;
    timer.source = &source;
    timer.when = when;
    timer.fire = [](detail::timer_node& n) noexcept {
        auto& d = static_cast<deadline&>(n);
        d.fired = true;
        d.source->request_stop();
    };
    s.add_timer(timer);
    struct disarm {
        detail::loop& s;
        detail::timer_node& t;
        ~disarm() { s.cancel_timer(t); }
    } guard{s, timer};

    try {
        co_return co_await std::move(t).with_stop_token(source.get_token());
    } catch (const cancelled_error&) {
        if (timer.fired) throw timeout_error("with_timeout");
        throw;
    }
}

/// with_timeout for a single operation: `co_await with_timeout(sock.recv(buf), 2s)`.
/// Await the result in the same expression (it refers to the operation).
template <class Awaitable, class Rep, class Period>
requires(!detail::is_task<std::remove_cvref_t<Awaitable>>::value) auto with_timeout(
    Awaitable&& op, std::chrono::duration<Rep, Period> limit) {
    return with_timeout(detail::as_task(std::forward<Awaitable>(op)), limit);
}

} // namespace cosock
