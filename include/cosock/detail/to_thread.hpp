// Runs one blocking call (getaddrinfo) on a helper thread and resumes the
// awaiting coroutine on its scheduler's thread with the result, like Python's
// asyncio.to_thread.
//
// Ownership: the call, its result and a mutex-guarded pointer to the scheduler
// live in a shared_ptr'd block that the helper thread co-owns; the helper never
// touches the awaiter or its frame. It posts to the scheduler while holding the
// block's mutex, and an awaiter that goes away (frame destroyed, scheduler
// destroyed, stop requested) clears that pointer under the same mutex first. So
// a helper that finishes late writes only into its own block and posts nothing.
//
// One detached thread per call, not a shared resolver thread: getaddrinfo
// cannot be interrupted and may block for the resolver's full timeout (seconds
// per attempt), so a single shared thread would make one dead name delay every
// lookup queued behind it, and a pool would need a lifetime of its own at
// program exit. A lookup happens at most once per connection, so starting a
// thread (tens of microseconds) is small next to it. getaddrinfo_a was the
// other option: it also notifies on a thread, cannot cancel a lookup that has
// started, and needs -lanl before glibc 2.34.
#pragma once

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

#include <cosock/detail/io_op.hpp>
#include <cosock/detail/wait_slot.hpp>
#include <cosock/error.hpp>
#include <cosock/scheduler.hpp>
#include <cosock/task.hpp>
#include <cosock/time.hpp>

namespace cosock::detail {

/// How many helper threads are running (started and not yet finished).
inline std::atomic<int> helper_threads{0};

/// What wait_for_helper_threads sleeps on. A mutex and a condition variable,
/// not std::atomic::wait: libstdc++ 12 builds the latter from them where the
/// system has no futex (mingw-w64) and loses a wake-up there (it tests the
/// value outside the mutex its notify does not take). Never destroyed: a
/// detached helper may finish while the program exits.
struct helper_gate {
    std::mutex mutex;
    std::condition_variable done;
};
inline helper_gate& helpers() {
    static helper_gate* gate = new helper_gate;
    return *gate;
}

/// Blocks until every helper thread has finished, including those whose
/// awaiter is long gone (tests use it to prove that nothing is touched late).
inline void wait_for_helper_threads() noexcept {
    std::unique_lock lock(helpers().mutex);
    helpers().done.wait(lock, [] { return helper_threads.load() == 0; });
}

/// `co_await to_thread(fn, "what")` runs `fn()` on a helper thread and gives its
/// result (or rethrows its exception) on the loop thread. The task's stop token
/// resumes the awaiter at once with cancelled_error; the call itself runs
/// to its end, unobserved. `fn` must own everything it uses: it may outlive
/// the awaiter. Throws std::logic_error outside a running scheduler.
template <class Fn>
class to_thread_awaiter {
  public:
    using result_type = std::invoke_result_t<Fn&>;
    static_assert(!std::is_void_v<result_type>, "to_thread: the call must return a value");

    to_thread_awaiter(Fn fn, const char* what)
        : sched_(&running_scheduler(what)), slot_(loop_of(*sched_)), state_(std::make_shared<shared>(std::move(fn))),
          what_(what) {}
    to_thread_awaiter(const to_thread_awaiter&) = delete;
    to_thread_awaiter& operator=(const to_thread_awaiter&) = delete;
    ~to_thread_awaiter() {
        slot_.disarm();
        detach();
    }

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        const std::stop_token* token = stop_token_of(h);
        if (token && token->stop_requested()) {
            phase_ = phase::cancelled;
            return false;
        }
        state_->sched = sched_;
        state_->waiter = this;
        start_helper(); // may throw (no thread): nothing is registered then
        slot_.owner_loop().expect_post(1);
        phase_ = phase::pending;
        slot_.node.handle = h;
        slot_.listen(this, token);
        return true;
    }

    /// A stop request: resume now, with cancelled_error.
    void on_end(end_reason) noexcept {
        if (phase_ != phase::pending) return; // the result is already in
        detach();
        phase_ = phase::cancelled;
        slot_.resume_soon();
    }

    result_type await_resume() {
        slot_.disarm();
        if (phase_ == phase::cancelled) throw cancelled_error(what_);
        if (state_->error) std::rethrow_exception(state_->error);
        return std::move(*state_->value);
    }

  private:
    enum class phase : unsigned char { idle, pending, done, cancelled };

    struct shared {
        explicit shared(Fn f) : fn(std::move(f)) {}
        Fn fn;                               // runs on the helper thread
        std::optional<result_type> value;    // written by the helper before it posts
        std::exception_ptr error;            // likewise
        std::mutex mutex;                    // guards sched
        scheduler* sched = nullptr;          // null once nobody waits: post nothing
        to_thread_awaiter* waiter = nullptr; // loop thread only
    };

    void start_helper() {
        helper_threads.fetch_add(1);
        try {
            std::thread(&helper_main, state_).detach();
        } catch (...) {
            finish_helper();
            state_->sched = nullptr;
            state_->waiter = nullptr;
            throw;
        }
    }

    static void finish_helper() noexcept {
        std::lock_guard lock(helpers().mutex);
        if (helper_threads.fetch_sub(1) == 1) helpers().done.notify_all();
    }

    // The helper thread. It owns `st`; the only thing outside it that it
    // touches is the scheduler, and only while the mutex says one is waiting.
    static void helper_main(std::shared_ptr<shared> st) noexcept {
        try {
            st->value.emplace(st->fn());
        } catch (...) {
            st->error = std::current_exception();
        }
        {
            std::lock_guard lock(st->mutex);
            // post() cannot report a failure to anyone here; bad_alloc ends the process.
            if (st->sched) st->sched->post([st] { deliver(*st); });
        }
        st.reset();
        finish_helper();
    }

    // Runs on the loop thread, from the posted function.
    static void deliver(shared& st) noexcept {
        to_thread_awaiter* self = st.waiter;
        if (!self) return; // cancelled or destroyed after the helper posted
        st.waiter = nullptr;
        self->phase_ = phase::done;
        self->slot_.owner_loop().expect_post(-1);
        self->slot_.resume_soon();
    }

    // No result is wanted any more: tell the helper not to post, and stop
    // expecting its post.
    void detach() noexcept {
        if (phase_ != phase::pending) return;
        {
            std::lock_guard lock(state_->mutex);
            state_->sched = nullptr;
        }
        state_->waiter = nullptr;
        slot_.owner_loop().expect_post(-1);
        phase_ = phase::idle;
    }

    scheduler* sched_;
    wait_slot<to_thread_awaiter> slot_;
    std::shared_ptr<shared> state_;
    const char* what_;
    phase phase_ = phase::idle;
};

/// Runs `fn` on a helper thread; see to_thread_awaiter. Keep the awaiter in a
/// named variable and `co_await` that (see GCC before 13 in task.hpp).
template <class Fn>
to_thread_awaiter<Fn> to_thread(Fn fn, const char* what) {
    return to_thread_awaiter<Fn>(std::move(fn), what);
}

} // namespace cosock::detail
