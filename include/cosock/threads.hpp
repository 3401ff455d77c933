// Several schedulers, one per thread: `co_await resume_on(other)` moves a
// coroutine to another scheduler's thread, and scheduler_group starts N
// threads with a scheduler each, runs a function on every one and stops them
// together.
//
// What stays true across threads: a scheduler is touched by its own thread
// only, apart from post(), stop(), load() and the incoming queue a hop goes
// through (see scheduler.hpp). An operation is awaited on the scheduler it
// was made on, so a socket goes with a coroutine only when handed over
// (socket::move_to). A task still belongs to the scheduler that spawned or
// runs it: that scheduler's run() waits while the task is away, and the task's
// end is counted there.
#pragma once

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <cosock/error.hpp>
#include <cosock/scheduler.hpp>
#if !COSOCK_WINDOWS
#include <cosock/signal.hpp> // stop_on: POSIX signals
#endif
#include <cosock/task.hpp>
#include <cosock/time.hpp>

namespace cosock {

namespace detail {

/// The awaiter of resume_on: one hop through the target's incoming queue.
class hop_awaiter {
  public:
    explicit hop_awaiter(scheduler& target) noexcept : target_(&loop_of(target)) {}
    hop_awaiter(const hop_awaiter&) = delete;
    hop_awaiter& operator=(const hop_awaiter&) = delete;
    // A frame destroyed mid-hop (its schedulers torn down together) leaves
    // nothing in the target's queue.
    ~hop_awaiter() {
        if (node_.state != op_state::idle) target_->take_back_posted(node_);
    }

    bool await_ready() const noexcept {
        scheduler* here = scheduler::current();
        return here && &loop_of(*here) == target_;
    }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) noexcept {
        node_.handle = h;
        node_.callback = &arrive;
        node_.self = this;
        if constexpr (std::is_base_of_v<promise_base, Promise>) {
            promise_base& p = h.promise();
            root_ = p.root ? p.root : &p;
            scheduler* here = scheduler::current();
            if (root_->owner && here && &root_->owner->owner_loop() == &loop_of(*here) && !root_->away) {
                root_->away = true; // leaving home: its scheduler waits for it
                loop_of(*here).count_away(1);
            }
        }
        target_->post_node(node_);
    }

    void await_resume() const noexcept {}

  private:
    struct node : ready_node {
        hop_awaiter* self = nullptr;
    };
    static void arrive(ready_node& n) {
        hop_awaiter& a = *static_cast<node&>(n).self;
        promise_base* root = a.root_;
        if (root && root->owner && &root->owner->owner_loop() == a.target_ && root->away) {
            root->away = false; // home again
            a.target_->count_away(-1);
        }
        n.handle.resume();
    }

    loop* target_;
    promise_base* root_ = nullptr;
    node node_;
};

} // namespace detail

/// `co_await resume_on(s)`: the coroutine continues on `s`'s thread, after
/// the tasks already queued there (nothing happens when it already runs on
/// `s`). `s` must be running, or about to run, on its thread, and must outlive
/// the hop. Sockets made on the old scheduler are not usable on the new
/// one until handed over with socket::move_to (their operations throw
/// std::logic_error otherwise). No allocation.
[[nodiscard]] inline detail::hop_awaiter resume_on(scheduler& s) noexcept { return detail::hop_awaiter(s); }

/// How a scheduler_group starts its threads.
struct group_options {
    backend which = backend::automatic; ///< every thread's backend, chosen as a scheduler's is
    bool pin = false;                   ///< thread i runs on the i-th CPU this process may use (modulo their number)
};

/// N threads, each with its own scheduler (made, run and destroyed on that
/// thread, so an io_uring ring has a single issuer), running one function on
/// each: `fn(scheduler&, std::size_t index)` returning a cosock::task<>.
///
/// It stops when stop() is called (from any thread, a task included), when a
/// function fails (its exception reaches the caller of join(), and the other
/// threads are stopped: the first failure wins), or when every function has
/// ended and every scheduler has nothing left to do. Stopping destroys what
/// is still suspended: every thread first cancels its scheduler's pending
/// I/O, then, one after the other, each destroys its scheduler (frames,
/// sockets and descriptors with it), so a task parked on another thread's
/// scheduler is never destroyed under a running loop.
///
///     cosock::scheduler_group g(2);
///     g.run([](cosock::scheduler& s, std::size_t) -> cosock::task<> { ... });
class scheduler_group {
  public:
    /// Starts `threads` threads and their schedulers; returns once all are
    /// made. Throws std::invalid_argument for 0 threads, and what a
    /// scheduler's constructor throws (std::system_error) if one cannot be made.
    explicit scheduler_group(std::size_t threads, group_options options = {}) : options_(options) {
        if (threads == 0) throw std::invalid_argument("cosock::scheduler_group: threads must be at least 1, not 0");
        slots_.resize(threads);
        std::unique_lock lock(mutex_);
        try {
            for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { thread_main(i); });
        } catch (...) {
            lock.unlock();
            abandon();
            throw;
        }
        changed_.wait(lock, [&] { return made_ == threads_.size(); });
        if (failure_) {
            std::exception_ptr e = failure_;
            lock.unlock();
            abandon();
            std::rethrow_exception(e);
        }
    }
    scheduler_group(const scheduler_group&) = delete;
    scheduler_group& operator=(const scheduler_group&) = delete;
    /// Stops the threads if they still run and waits for them.
    ~scheduler_group() { abandon(); }

    std::size_t size() const noexcept { return slots_.size(); }
    /// The scheduler of thread `i` (valid until the group stops). Throws
    /// std::out_of_range for an index past the end, std::logic_error once
    /// the group has stopped.
    scheduler& operator[](std::size_t i) const {
        if (i >= slots_.size())
            throw std::out_of_range("cosock::scheduler_group: no scheduler " + std::to_string(i) + " in a group of " +
                                    std::to_string(slots_.size()));
        if (!slots_[i]) throw std::logic_error("cosock::scheduler_group: the group has stopped; its schedulers are gone");
        return *slots_[i];
    }
    /// The schedulers in turn (round robin); from any thread while the group
    /// runs (not once stop() may have been called: the schedulers go then).
    /// Hand work only to a thread whose function still runs: once every
    /// function has ended, a thread whose scheduler has nothing left ends,
    /// and what is posted to it after that is destroyed unrun.
    scheduler& next() noexcept { return *slots_[next_.fetch_add(1, std::memory_order_relaxed) % slots_.size()]; }
    /// The scheduler holding the fewest tasks (scheduler::load()); from any thread.
    scheduler& least_loaded() noexcept {
        scheduler* best = slots_[0];
        for (scheduler* s : slots_)
            if (s->load() < best->load()) best = s;
        return *best;
    }

    /// Runs `fn(scheduler&, index)` on every thread. Once only.
    template <class Fn>
    void start(Fn fn) {
        static_assert(std::is_invocable_r_v<task<>, Fn&, scheduler&, std::size_t>,
                      "scheduler_group::start: fn(scheduler&, std::size_t) must return cosock::task<>");
        std::lock_guard lock(mutex_);
        if (started_) throw std::logic_error("cosock::scheduler_group::start: already started");
        fn_ = [fn = std::move(fn)](scheduler& s, std::size_t i) mutable -> task<> { return fn(s, i); };
        started_ = true;
        changed_.notify_all();
    }
    /// Waits until every thread has ended, then rethrows the first exception
    /// a function threw (if any). Call it from outside the group's threads.
    void join() {
        for (std::thread& t : threads_)
            if (t.joinable()) t.join();
        if (std::exception_ptr e = std::exchange(failure_, nullptr)) std::rethrow_exception(e);
    }
    /// start(fn), then join().
    template <class Fn>
    void run(Fn fn) {
        start(std::move(fn));
        join();
    }
#if !COSOCK_WINDOWS
    /// Stops the group when one of `signals` arrives (e.g. {SIGINT, SIGTERM}):
    /// caught from this call on, watched by a task on the first thread. Once
    /// every function has ended the watch ends too, so it does not keep the
    /// group up. Call it before start() (std::logic_error after); throws what
    /// signal_set throws for a bad signal.
    template <int = 0>
    void stop_on(signal_list signals) {
        {
            std::lock_guard lock(mutex_);
            if (started_) throw std::logic_error("cosock::scheduler_group::stop_on: call it before start()");
        }
        // The first scheduler runs nowhere yet: its set may be made here.
        slots_[0]->spawn(watch(std::make_unique<signal_set>(*slots_[0], signals)));
    }
#endif

    /// Ends every thread's loop soon; from any thread, once or many times.
    void stop() noexcept {
        std::lock_guard lock(mutex_);
        stopping_.store(true, std::memory_order_relaxed);
        for (scheduler* s : slots_)
            if (s) {
                s->stop();
                try {
                    s->post([s] { s->stop(); }); // also when its run() has not started yet
                } catch (...) {                  // out of memory: the flag set above still stops a running loop
                }
            }
        changed_.notify_all();
    }

  private:
    void thread_main(std::size_t i) {
        std::optional<scheduler> s;
        try {
            if (options_.pin) pin(i);
            s.emplace(options_.which);
        } catch (...) {
            fail(std::current_exception());
        }
        std::unique_lock lock(mutex_);
        if (s) slots_[i] = &*s;
        ++made_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return started_ || stopping_.load(std::memory_order_relaxed); });
        bool run = s && started_ && !stopping_.load(std::memory_order_relaxed);
        std::function<task<>(scheduler&, std::size_t)> fn = fn_; // each thread calls its own copy
        lock.unlock();
        if (run) serve(*s, i, fn);
        // Everyone's pending I/O is cancelled before any frame is destroyed:
        // a frame may wait on another thread's backend, which only that
        // thread touches. Then the schedulers go one after the other.
        if (s) detail::loop_of(*s).cancel_io();
        lock.lock();
        ++cancelled_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return cancelled_ == threads_.size() && turn_ == i; });
        // Out of the slots before it goes, under the lock: a stop() from
        // another thread (the group's destructor, say) posts to every
        // scheduler still in them.
        slots_[i] = nullptr;
        lock.unlock();
        s.reset();
        lock.lock();
        ++turn_;
        changed_.notify_all();
    }

    void serve(scheduler& s, std::size_t i, std::function<task<>(scheduler&, std::size_t)>& fn) {
        detail::loop& l = detail::loop_of(s);
        l.expect_post(1); // stays up while any function runs: work may be handed to it
        try {
            s.run(fn(s, i));
        } catch (...) {
            if (!stopping_.load(std::memory_order_relaxed)) fail(std::current_exception());
        }
        {
            std::lock_guard lock(mutex_);
            if (++ended_ == slots_.size()) {
                for (scheduler* other : slots_) other->post([other] { detail::loop_of(*other).expect_post(-1); });
                slots_[0]->post([this] { watching_.request_stop(); });
            }
        }
        try {
            if (!stopping_.load(std::memory_order_relaxed)) s.run();
        } catch (...) {
            fail(std::current_exception());
        }
    }

#if !COSOCK_WINDOWS
    template <int = 0>
    task<> watch(std::unique_ptr<signal_set> set) {
        try {
            co_await detail::as_task(set->wait()).with_stop_token(watching_.get_token());
            stop();
        } catch (const cancelled_error&) { // every function ended first
        }
    }
#endif

    void fail(std::exception_ptr e) noexcept {
        {
            std::lock_guard lock(mutex_);
            if (!failure_) failure_ = std::move(e);
        }
        stop();
    }

    void pin(std::size_t i) const {
        if (int r = detail::sys::pin_this_thread(i); r < 0)
            throw std::system_error(-r, detail::os_category(),
                                    "cosock::scheduler_group: pinning thread " + std::to_string(i));
    }

    // Stops, wakes threads still waiting for start(), joins, drops any failure.
    void abandon() noexcept {
        stop();
        for (std::thread& t : threads_)
            if (t.joinable()) t.join();
    }

    group_options options_;
    std::vector<scheduler*> slots_; // thread i's scheduler, while it exists
    std::vector<std::thread> threads_;
    std::function<task<>(scheduler&, std::size_t)> fn_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::size_t made_ = 0, ended_ = 0, cancelled_ = 0, turn_ = 0;
    bool started_ = false;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> next_{0};
    std::exception_ptr failure_;
    std::stop_source watching_; // ends stop_on's watch (requested on the first thread)
};

} // namespace cosock
