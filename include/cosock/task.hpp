// cosock::task<T>: the coroutine type of the library.
//
// A task is lazy (its body starts when it is awaited, run or spawned), move-only,
// and owns its frame. A body that finishes without suspending hands control
// straight back to its awaiter; one that suspended resumes its awaiter by
// symmetric transfer. Either way a loop of co_awaits runs in constant stack;
// nesting (a task awaiting a task awaiting …) uses stack like nested calls.
// An exception thrown in the body is rethrown from the co_await that awaited it.
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <cosock/detail/io_op.hpp>

namespace cosock {

template <class T = void>
class task;

namespace detail {

struct promise_base;
template <class T>
const std::stop_token& stop_token_of(const task<T>& t) noexcept;

class loop;
/// The loop of the scheduler running on this thread, or nullptr (scheduler.hpp).
loop* current_loop() noexcept;
/// Resumes `p`'s continuation on its caller's loop, from another thread (scheduler.hpp).
std::coroutine_handle<> resume_elsewhere(promise_base& p) noexcept;
/// Withdraws `n` from `l`'s queues (scheduler.hpp).
void take_back_from(loop* l, ready_node& n) noexcept;

/// The scheduler a task that is not awaited by another belongs to (a spawned
/// task, or the one run() runs): told when it finishes, wherever it runs then.
struct task_owner {
    virtual void task_finished(promise_base& p) noexcept = 0;
    virtual loop& owner_loop() noexcept = 0;

  protected:
    ~task_owner() = default;
};

// A promise is linked (as a list_node) into its owner's list while detached.
struct promise_base : list_node {
    // Where the body runs: `inline_start` while the awaiter's await_suspend is
    // resuming it, `inline_done` if it finished there, `resumed_later` once it
    // suspended (on I/O) and will finish from the run loop.
    enum class phase : unsigned char { idle, inline_start, inline_done, resumed_later };

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            promise_base& p = h.promise();
            // Finished before the awaiter's await_suspend decided whether to
            // suspend the caller: it resumes the caller without a new frame.
            // (An exchange: after a hop the body ends on another thread.)
            if (p.where.exchange(phase::inline_done, std::memory_order_acq_rel) == phase::inline_start)
                return std::noop_coroutine();
            if (p.continuation) {
                // The caller continues on its own scheduler, not on the one
                // this task ended on (see resume_on).
                if (p.caller_loop && p.caller_loop != current_loop()) return resume_elsewhere(p);
                return p.continuation;
            }
            if (p.owner) p.owner->task_finished(p); // may destroy the frame: touch nothing after
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    promise_base() = default;
    promise_base(const promise_base&) = delete;
    // A frame destroyed while its start node carries its caller home (its
    // caller's frame is being destroyed) takes the node back.
    ~promise_base() {
        if (start.state != op_state::idle && caller_loop) take_back_from(caller_loop, start);
    }

    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { exception = std::current_exception(); }

    std::coroutine_handle<> continuation; // the awaiting coroutine, if any
    std::exception_ptr exception;
    task_owner* owner = nullptr;  // for a task no other awaits: its scheduler (see task_owner)
    promise_base* root = nullptr; // the task at the bottom of this one's chain of awaiters; nullptr: itself
    bool detached = false;        // spawned: its scheduler destroys the frame when it ends
    bool away = false;            // a root task running on another scheduler's thread (see resume_on)
    std::stop_token stop;         // cancels the task's waiting operations; inherited by the tasks it awaits
    std::atomic<phase> where{phase::idle};
    loop* caller_loop = nullptr; // the scheduler the awaiting coroutine runs on
    // How a scheduler queues this task's first resume (and, from another
    // thread, its start or its end: see scheduler::post and task_finished).
    struct start_node : ready_node {
        promise_base* task = nullptr;
    } start;
};

template <class T>
struct promise final : promise_base {
    task<T> get_return_object() noexcept;
    template <class U = T>
    requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) { value.emplace(std::forward<U>(v)); }
    T result() {
        if (exception) std::rethrow_exception(exception);
        return std::move(*value);
    }
    std::optional<T> value;
};

template <class T>
struct promise<T&> final : promise_base {
    task<T&> get_return_object() noexcept;
    void return_value(T& v) noexcept { value = std::addressof(v); }
    T& result() {
        if (exception) std::rethrow_exception(exception);
        return *value;
    }
    T* value = nullptr;
};

template <>
struct promise<void> final : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void result() const {
        if (exception) std::rethrow_exception(exception);
    }
};

} // namespace detail

/// A lazily started coroutine producing a T. Move-only; destroying a task
/// destroys its frame (and, through it, any task it is awaiting).
template <class T>
class [[nodiscard]] task {
  public:
    using promise_type = detail::promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : h_(h) {}
    task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            if (h_) h_.destroy();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    ~task() {
        if (h_) h_.destroy();
    }

    /// True when the task has a frame (it was not moved from).
    bool valid() const noexcept { return bool(h_); }
    /// True when the body has finished (returned or thrown).
    bool done() const noexcept { return h_ && h_.done(); }

    /// Awaiting starts the task and resumes the awaiter with its result.
    /// Throws std::logic_error for an empty task or one that already ran.
    auto operator co_await() && noexcept { return awaiter{h_}; }
    auto operator co_await() & noexcept { return awaiter{h_}; }

    /// Makes `token` cancel the operations this task (and every task it
    /// awaits) waits on: they fail with cancelled_error. Call before the
    /// task starts; request_stop() only on the scheduler's thread.
    task&& with_stop_token(std::stop_token token) && noexcept {
        if (h_) h_.promise().stop = std::move(token);
        return std::move(*this);
    }

    /// Gives up ownership of the frame (used by the scheduler).
    handle_type release() noexcept { return std::exchange(h_, {}); }

  private:
    template <class U>
    friend const std::stop_token& detail::stop_token_of(const task<U>&) noexcept;

    struct awaiter {
        handle_type h;
        bool await_ready() const {
            if (!h) throw std::logic_error("cosock::task: awaiting an empty task");
            if (h.done() || h.promise().continuation)
                throw std::logic_error("cosock::task: a task can be awaited only once");
            return false;
        }
        // Runs the body right here. A body that finishes without suspending
        // resumes the caller by returning false, so a loop of such awaits runs
        // in constant stack even where the compiler does not turn symmetric
        // transfer into a tail call (GCC below -O2 or with sanitizers).
        template <class Caller>
        bool await_suspend(std::coroutine_handle<Caller> caller) noexcept {
            auto& p = h.promise();
            if constexpr (std::is_base_of_v<detail::promise_base, Caller>) {
                auto& cp = caller.promise();
                if (!p.stop.stop_possible()) p.stop = cp.stop;
                p.root = cp.root ? cp.root : &cp;
            }
            p.continuation = caller;
            p.caller_loop = detail::current_loop();
            p.where.store(detail::promise_base::phase::inline_start, std::memory_order_relaxed);
            h.resume();
            // The body ended (inline_done), or will end later, maybe on another
            // thread: whichever of this and its final step comes second resumes
            // the caller.
            return p.where.exchange(detail::promise_base::phase::resumed_later, std::memory_order_acq_rel) !=
                   detail::promise_base::phase::inline_done;
        }
        decltype(auto) await_resume() { return h.promise().result(); }
    };

    handle_type h_;
};

namespace detail {
template <class T>
task<T> promise<T>::get_return_object() noexcept {
    return task<T>{std::coroutine_handle<promise>::from_promise(*this)};
}
template <class T>
task<T&> promise<T&>::get_return_object() noexcept {
    return task<T&>{std::coroutine_handle<promise>::from_promise(*this)};
}
inline task<void> promise<void>::get_return_object() noexcept {
    return task<void>{std::coroutine_handle<promise>::from_promise(*this)};
}

// GCC before 13 and co_await. The one note on it; code that works around it
// says "see GCC before 13 in task.hpp".
// - A temporary in the full-expression of a co_await (a braced list, a value
//   an awaiter hands back, a lambda capturing a std::string) may be copied
//   into the frame bytewise and destroyed twice (GCC bugs 99576 and 100611,
//   fixed in GCC 13). cosock keeps such values in named variables, each in a
//   statement of its own; user code built with GCC 12 must do the same with
//   braced lists (README, "Known compiler issues").
// - A co_await in the right operand of && or || runs even when the left
//   operand decides the result (seen with GCC 12.2; not matched to a report):
//   cosock never writes one.

// Coroutines as templates, and what calls them. g++ (12 here) compiles the
// body of every inline coroutine in every translation unit that sees it,
// used or not, and with it everything the body calls: an empty program
// including cosock.hpp generated 240 KB of code. A function template is
// compiled only where instantiated, and referring to one from any inline
// function's body instantiates it. So every coroutine in a header that is not
// already a template is one (`template <int = 0>`, nothing to give at the
// call), and so is each non-template function that calls one (e.g.
// getaddrinfo, scheduler_group::stop_on). Keep it so when adding one: the
// header-cost check (bench/compile_cost.sh) shows a slip.

/// `co_await current_stop_token{}`: the awaiting task's stop token, without
/// suspending. Give it a statement of its own (`std::stop_token t = co_await
/// current_stop_token{};`; see GCC before 13, above).
struct current_stop_token {
    std::stop_token token;
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
        if constexpr (std::is_base_of_v<promise_base, Promise>) token = h.promise().stop;
        return false;
    }
    std::stop_token await_resume() noexcept { return std::move(token); }
};

/// A stop source that is also stopped when `outer` (or `also`) is: a scope
/// (with_timeout, when_all, when_any) cancels its own tasks, and the caller can
/// still cancel all.
class linked_stop_source {
  public:
    explicit linked_stop_source(const std::stop_token& outer, const std::stop_token& also = {}) {
        if (outer.stop_possible()) link_.emplace(outer, forward{&source_});
        if (also.stop_possible()) also_.emplace(also, forward{&source_});
    }
    linked_stop_source(const linked_stop_source&) = delete;
    std::stop_token get_token() const noexcept { return source_.get_token(); }
    void request_stop() noexcept { source_.request_stop(); }

  private:
    struct forward {
        std::stop_source* source;
        void operator()() const noexcept { source->request_stop(); }
    };
    std::stop_source source_;
    std::optional<std::stop_callback<forward>> link_, also_;
};

/// The stop token given to a task with with_stop_token(), if any.
template <class T>
const std::stop_token& stop_token_of(const task<T>& t) noexcept {
    return t.h_.promise().stop;
}
} // namespace detail

} // namespace cosock
