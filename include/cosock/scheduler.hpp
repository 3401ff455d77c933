// cosock::scheduler: the run loop. It owns the ready queue and one backend,
// chosen at run time, and it owns the frames of spawned tasks.
//
// A scheduler is single-threaded: create it, spawn and run on one thread.
// Other threads reach it through three doors only, each taking one mutex and
// waking the loop through its waker (an eventfd on Linux): post() (a function, or a task to
// spawn), stop(), and the incoming queue cosock's own awaiters use to resume
// a coroutine here from elsewhere (resume_on, channels: loop::post_node).
// Methods not marked noexcept may throw std::system_error (a failed wait) or
// std::logic_error (misuse, named in the message).
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <atomic>
#include <mutex>
#include <pthread.h>

#include <cosock/backend.hpp>
#include <cosock/detail/io_backend.hpp>
#include <cosock/detail/ops/wait.hpp>
#include <cosock/detail/os_category.hpp>
#include <cosock/detail/timer_heap.hpp>
#include <cosock/error.hpp>
#include <cosock/operation.hpp>
#include <cosock/task.hpp>

namespace cosock {

class scheduler;

namespace detail {
/// The small block through which sockets and file objects reach their
/// scheduler. The scheduler clears it when it is destroyed, so one that
/// outlives it knows, and closes its descriptor without a backend.
struct scheduler_anchor {
    cosock::scheduler* sched;
    std::atomic<std::size_t> owners;
};

/// A counted reference to a scheduler_anchor: what a socket keeps of its
/// scheduler (it may outlive it, and move to another thread).
class scheduler_ref {
  public:
    scheduler_ref() noexcept = default;
    explicit scheduler_ref(scheduler_anchor* a) noexcept : a_(a) {
        if (a_) a_->owners.fetch_add(1, std::memory_order_relaxed);
    }
    scheduler_ref(const scheduler_ref& o) noexcept : scheduler_ref(o.a_) {}
    scheduler_ref(scheduler_ref&& o) noexcept : a_(std::exchange(o.a_, nullptr)) {}
    scheduler_ref& operator=(scheduler_ref o) noexcept {
        std::swap(a_, o.a_);
        return *this;
    }
    ~scheduler_ref() {
        if (a_ && a_->owners.fetch_sub(1, std::memory_order_acq_rel) == 1) delete a_;
    }
    /// The scheduler, or nullptr once it is destroyed (or for an empty reference).
    cosock::scheduler* get() const noexcept { return a_ ? a_->sched : nullptr; }

  private:
    scheduler_anchor* a_ = nullptr;
};
} // namespace detail

namespace detail {
/// State that a part of cosock above the loop keeps per scheduler (signal.hpp's
/// signal port): made on first use by loop::service(), destroyed with the
/// scheduler, after the frames it owns and before its backend.
class loop_service {
  public:
    loop_service() = default;
    loop_service(const loop_service&) = delete;
    loop_service& operator=(const loop_service&) = delete;
    virtual ~loop_service() = default;
};

/// What cosock's awaiters and sockets use of a scheduler: its backend, ready
/// queue and timers. Not API: a scheduler inherits it privately, so user code
/// cannot reach it; cosock reaches it through loop_of(scheduler&).
class loop {
  public:
    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;

    io_backend& io() noexcept { return *io_; }
    ready_queue& ready() noexcept { return ready_; }
    /// How `op`, just started, begins (see io_backend::first_step). `now`
    /// only while the coroutine has fairness budget left: each resumed
    /// coroutine gets some, so one fed by a busy peer cannot starve the others.
    [[gnu::always_inline]] start first_step(const io_op& op) noexcept {
        // A readiness backend's is called directly (it ignores others_ready).
        start how =
            readiness_ ? readiness_->readiness_backend::first_step(op, false) : io_->first_step(op, !ready_.empty());
        if (how != start::now) return how;
        if (inline_budget_ == 0) return start::untried;
        --inline_budget_;
        return how;
    }
    /// Hands `op` to the backend to wait (see io_backend::arm); epoll's is
    /// called directly.
    [[gnu::always_inline]] void arm(io_op& op) {
#if COSOCK_HAS_EPOLL
        if (epoll_) return epoll_->arm_here(op);
#endif
        io_->arm(op);
    }
    /// A reference to the scheduler that knows when it is gone (for sockets).
    const scheduler_ref& ref() const noexcept { return anchor_ref_; }
    void schedule(ready_node& n) noexcept {
        n.state = op_state::queued;
        ready_.push_back(n);
    }
    /// Starts `t` (whose `when` and `fire` are set); it fires once, on the
    /// loop thread, unless cancelled first.
    void add_timer(timer_node& t) { timers_.push(t); }
    void cancel_timer(timer_node& t) noexcept {
        if (t.armed()) timers_.erase(t);
    }
    /// Work that will arrive through post() (e.g. a name being resolved on
    /// another thread): while any is expected, run() waits for it.
    void expect_post(int delta) noexcept { expected_posts_ += delta; }
    /// Takes `op` back from wherever it is (its frame is being destroyed).
    void forget(io_op& op) noexcept {
        if (op.state == op_state::waiting)
            io_->cancel(op, ready_);
        else if (op.state == op_state::queued)
            ready_.erase(op);
        op.state = op_state::idle;
    }
    /// This loop's `Service` (a loop_service made from the loop), made on
    /// first use.
    template <class Service>
    Service& service() {
        static const char key = 0; // one address per Service in the program
        for (auto& [k, made] : services_)
            if (k == &key) return static_cast<Service&>(*made);
        auto made = std::make_unique<Service>(*this);
        Service& s = *made;
        services_.emplace_back(&key, std::move(made));
        return s;
    }

    /// From any thread: `n` is resumed on this loop's thread soon (its
    /// callback called, or its handle resumed), in the order posted. Until
    /// then it is `posted`; take_back_posted() withdraws it.
    void post_node(ready_node& n) noexcept {
        bool was_empty;
        {
            std::lock_guard lock(post_mutex_);
            was_empty = incoming_.empty();
            n.state = op_state::posted;
            incoming_.push_back(n);
            incoming_count_.fetch_add(1, std::memory_order_relaxed);
        }
        if (was_empty) sys::wake(waker_);
    }
    /// Withdraws `n` (its frame is being destroyed) wherever post_node put
    /// it: still incoming, or already in the ready queue. On the loop thread.
    void take_back_posted(ready_node& n) noexcept {
        {
            std::lock_guard lock(post_mutex_);
            if (n.state == op_state::posted) {
                incoming_.erase(n);
                incoming_count_.fetch_sub(1, std::memory_order_relaxed);
                n.state = op_state::idle;
                return;
            }
        }
        if (n.state == op_state::queued) ready_.erase(n);
        n.state = op_state::idle;
    }
    /// Ends every operation waiting in the backend (they resume, if ever,
    /// with their cancellation), as destroying the scheduler does first.
    void cancel_io() noexcept { io_->cancel_all(ready_); }
    /// A task this scheduler owns left for another scheduler's thread
    /// (+1), or came back or ended there (-1): while any is away, run()
    /// waits for it. On the loop thread.
    void count_away(int delta) noexcept { away_ += delta; }

  protected:
    // The wake-up descriptor is made first, so that with few descriptors left
    // `automatic` falls back to a backend that needs none of its own.
    explicit loop(cosock::backend which)
        : waker_(make_waker()), io_(backend_or_close_waker(which)),
          readiness_(kind_ == cosock::backend::io_uring ? nullptr : static_cast<readiness_backend*>(io_.get())) {
#if COSOCK_HAS_EPOLL
        epoll_ = kind_ == cosock::backend::epoll ? static_cast<epoll_backend*>(io_.get()) : nullptr;
#endif
    }
    ~loop() { sys::close_waker(waker_); }

    static constexpr unsigned inline_budget = 64;

    cosock::backend kind_ = cosock::backend::automatic;
    sys::waker waker_;               // what post() wakes the loop with
    std::unique_ptr<io_backend> io_; // outlives every frame the scheduler destroys
    // The same backend, for the calls made without a virtual call (or null).
    readiness_backend* readiness_; // select, poll or epoll
#if COSOCK_HAS_EPOLL
    epoll_backend* epoll_ = nullptr;
#endif
    scheduler_anchor* anchor_ = nullptr; // owned by anchor_ref_ and the sockets' references
    scheduler_ref anchor_ref_;
    ready_queue ready_;
    timer_heap timers_;
    unsigned inline_budget_ = inline_budget;
    int expected_posts_ = 0;
    int away_ = 0;
    std::mutex post_mutex_;               // guards incoming_ (and the scheduler's posted functions)
    intrusive_list<ready_node> incoming_; // nodes posted from other threads
    std::atomic<std::size_t> incoming_count_{0};
    std::vector<std::pair<const void*, std::unique_ptr<loop_service>>> services_;

  private:
    static sys::waker make_waker() {
        sys::waker w;
        if (int r = sys::open_waker(w); r < 0) throw std::system_error(-r, os_category(), "cosock: the loop's waker");
        return w;
    }
    std::unique_ptr<io_backend> backend_or_close_waker(cosock::backend which) {
        try {
            return choose_backend(which, kind_);
        } catch (...) {
            sys::close_waker(waker_);
            throw;
        }
    }
};

/// The awaiter-facing part of `s`.
loop& loop_of(cosock::scheduler& s) noexcept;
} // namespace detail

/// What a scheduler has done so far, for watching a loop from outside: an idle
/// loop makes few waits however long it sleeps; one that spins makes many.
struct scheduler_stats {
    std::uint64_t waits = 0;   ///< times the loop asked the backend for completions
    std::uint64_t resumes = 0; ///< coroutines and callbacks the loop resumed
};

/// The run loop: a ready queue of coroutines plus one backend.
///
/// Spawned tasks are owned by the scheduler; destroying it destroys the frames
/// of tasks still suspended (their sockets close, nothing leaks). An exception
/// that escapes a spawned task does not stop other tasks: it is handed to the
/// exception handler (by default: printed to stderr) after the current batch.
///
/// Final: its one virtual function is the tasks' private hook, not a point of
/// extension, and a non-final class with one could not be deleted through a
/// pointer to it (std::unique_ptr<scheduler>) without a warning from clang.
class scheduler final : private detail::task_owner, private detail::loop {
  public:
    using exception_handler = std::function<void(std::exception_ptr)>;

    /// Creates a scheduler with the given backend. `automatic` picks the best
    /// one available, unless the COSOCK_BACKEND environment variable names one.
    /// Throws std::invalid_argument for a bad COSOCK_BACKEND value.
    /// An explicit backend that cannot work here (e.g. io_uring refused by the
    /// kernel) throws std::system_error saying why; `automatic` falls back.
    explicit scheduler(backend which = backend::automatic) : detail::loop(which) {
        anchor_ = new detail::scheduler_anchor{this, {0}};
        anchor_ref_ = detail::scheduler_ref(anchor_);
        wake_.fd = waker_.fd;
        wake_.type = &detail::ops::wait_readable;
        wake_.tried = true; // every arm follows a drain of the waker (or finds it fresh)
        wake_.owner = this;
        wake_.callback = [](detail::ready_node& n) { static_cast<wake_op&>(n).owner->run_posted(); };
    }

    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    ~scheduler() {
        // The ops still waiting end first, in as few kernel round trips as the
        // backend can; then the frames go, and their awaiters, finding their
        // ops completed, only take them off the ready queue.
        io_->cancel_all(ready_);
        drop_incoming();
        while (detail::promise_base* p = detached_.pop_front()) {
            if (p->start.state == detail::op_state::queued) ready_.erase(p->start);
            p->owner = nullptr;
            p->start.handle.destroy();
        }
        forget(wake_);
        drop_incoming(); // what the frames just destroyed may have posted
        services_.clear();
        // What is left belongs to frames the scheduler does not own (a task
        // kept by the user): their operations ended above; leaving them
        // queued or timed nowhere, so that destroying them later finds
        // nothing to take back here.
        while (detail::ready_node* n = ready_.pop_front()) n->state = detail::op_state::idle;
        timers_.clear();
        anchor_->sched = nullptr; // sockets that outlive the scheduler close without it
    }

    /// The scheduler running on this thread, or nullptr outside run().
    /// (Out of line with clang: it may keep a thread_local's address across a
    /// coroutine's suspension, and after resume_on the coroutine would read
    /// the old thread's value. GCC reads it afresh.)
#ifdef __clang__
    [[gnu::noinline]]
#endif
    static scheduler*
    current() noexcept {
        return current_;
    }

    /// Whether a run() is active, on whichever thread; from any thread.
    bool running() const noexcept { return running_.load(std::memory_order_relaxed); }

    /// The backend in use (never `automatic`).
    backend backend_kind() const noexcept { return kind_; }
    /// The backend's name: "select", "poll", …
    std::string_view backend_name() const noexcept { return io_->name(); }

    /// Runs the loop until `t` finishes; returns its value or rethrows its
    /// exception. Spawned tasks run alongside. Throws std::logic_error if `t`
    /// waits for something that can never happen, and
    /// std::system_error(operation_canceled) if stop() ends the loop first.
    template <class T>
    T run(task<T> t) {
        auto h = t.release();
        if (!h) throw std::logic_error("cosock::scheduler::run: the task is empty");
        task<T> owner{h};
        run_guard guard{*this, &h.promise().start};
        h.promise().start.handle = h;
        h.promise().start.task = &h.promise();
        h.promise().owner = this;
        schedule(h.promise().start);
        // While the task runs on another scheduler's thread (resume_on) its
        // frame is that thread's to read: done() is asked only once it is back.
        while (h.promise().away || !h.done()) {
            if (stop_requested_.load(std::memory_order_relaxed))
                throw std::system_error(detail::os_error(std::errc::operation_canceled),
                                        "cosock::scheduler::run: stopped before the task finished");
            if (!turn())
                throw std::logic_error("cosock::scheduler::run: the task can never finish: it waits, "
                                       "but no I/O is pending and no task is ready");
        }
        return h.promise().result();
    }

    /// run() of an operation (a socket's recv, a file object's readline, …),
    /// as of a task awaiting it: `s.run(f.readline())`.
    template <class Awaiter>
    auto run(operation<Awaiter> op) {
        return run(detail::as_task(std::move(op)));
    }

    /// Runs spawned tasks until stop() is called or no work is left.
    void run() {
        run_guard guard{*this, nullptr};
        while (!stop_requested_.load(std::memory_order_relaxed) && turn()) {
        }
    }

    /// Starts `t` detached: the scheduler owns it and destroys it when it ends.
    /// Its result is discarded; an exception goes to the exception handler.
    /// On the scheduler's thread (or before it runs); from another thread
    /// use post(task).
    template <class T>
    void spawn(task<T> t) {
        detail::promise_base& p = adopt(std::move(t), "spawn");
        keep(p);
        schedule(p.start);
    }

    /// `co_await s.yield()` lets every other ready task run, and pending I/O be
    /// collected, before the caller continues (Python's `await asyncio.sleep(0)`).
    [[nodiscard]] auto yield() noexcept { return yield_awaiter{*this}; }

    /// Runs `fn` on the loop thread soon. The one method that may be called
    /// from any thread; it wakes a waiting loop. An exception `fn` throws goes
    /// to the exception handler, as one escaping a spawned task does. Functions posted while no
    /// run() is active run in the next one. The caller must make sure the
    /// scheduler outlives the call (e.g. clear its pointer under a lock the
    /// loop thread takes before destroying the scheduler).
    void post(std::function<void()> fn) {
        {
            std::lock_guard lock(post_mutex_);
            posted_.push_back(std::move(fn));
        }
        detail::sys::wake(waker_);
    }

    /// spawn() from any thread: `t` starts on this scheduler's thread soon,
    /// in the order posted (a connection handed to another thread's
    /// scheduler, say). No allocation: the task's own frame carries it. The
    /// same lifetime rule as post(function) holds.
    template <class T>
    void post(task<T> t) {
        detail::promise_base& p = adopt(std::move(t), "post");
        p.start.callback = &posted_task; // a mark: run_posted() adopts it
        post_node(p.start);
    }

    /// Makes the current run() return after the batch being run; the next
    /// run() starts afresh (a stop() while no run() is active is for none).
    /// Spawned tasks stay suspended, not destroyed. From any thread: a loop
    /// waiting on another thread wakes to return.
    void stop() noexcept {
        stop_requested_.store(true, std::memory_order_relaxed);
        if (current_ != this) detail::sys::wake(waker_);
    }

    /// Replaces the handler for exceptions escaping spawned tasks. The handler
    /// runs on the loop thread; if it throws, the exception leaves run().
    void set_exception_handler(exception_handler h) { handler_ = std::move(h); }

    /// How many spawned tasks have not finished yet. On the loop thread.
    std::size_t spawned_count() const noexcept { return detached_.size(); }

    /// How many tasks this scheduler holds: spawned and not finished, plus
    /// those posted to it and not started yet. From any thread (a relaxed
    /// count, for choosing the least loaded of several schedulers).
    std::size_t load() const noexcept {
        return spawned_.load(std::memory_order_relaxed) + incoming_count_.load(std::memory_order_relaxed);
    }

    /// The loop's counters since the scheduler was created. Read it on the
    /// loop thread.
    scheduler_stats stats() const noexcept { return stats_; }

  private:
    template <class T>
    detail::promise_base& adopt(task<T> t, const char* what) {
        auto h = t.release();
        if (!h) throw std::logic_error(std::string("cosock::scheduler::") + what + ": the task is empty");
        detail::promise_base& p = h.promise();
        p.owner = this;
        p.detached = true;
        p.start.handle = h;
        p.start.task = &p;
        return p;
    }
    static detail::promise_base& promise_of_start(detail::ready_node& n) noexcept {
        return *static_cast<detail::promise_base::start_node&>(n).task;
    }
    void keep(detail::promise_base& p) noexcept {
        detached_.push_back(p);
        spawned_.store(detached_.size(), std::memory_order_relaxed);
    }

    struct yield_awaiter {
        scheduler& s;
        detail::ready_node node;
        explicit yield_awaiter(scheduler& sched) noexcept : s(sched) {}
        yield_awaiter(const yield_awaiter&) = delete;
        ~yield_awaiter() {
            if (node.state == detail::op_state::queued) s.ready_.erase(node);
        }
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) noexcept {
            node.handle = h;
            s.schedule(node);
        }
        void await_resume() const noexcept {}
    };

    struct run_guard {
        scheduler& s;
        detail::ready_node* root;
        scheduler* outer;
        run_guard(scheduler& sched, detail::ready_node* r) : s(sched), root(r), outer(current_) {
            if (s.running_) throw std::logic_error("cosock::scheduler::run: already running");
            s.stop_requested_.store(false, std::memory_order_relaxed); // a stop() between runs is for no run
            if (s.io_->orphaned()) detail::io_backend::refuse_after_fork();
            s.io_->bind_thread();
            if (s.wake_.state == detail::op_state::idle) s.io_->arm(s.wake_);
            s.running_ = true;
            current_ = &s;
        }
        ~run_guard() {
            if (root && root->state == detail::op_state::queued) s.ready_.erase(*root);
            s.running_ = false;
            s.stop_requested_.store(false, std::memory_order_relaxed);
            current_ = outer;
        }
    };

    // Anything that can still make progress, apart from the wake-up op.
    bool has_work() const noexcept {
        return !ready_.empty() || !timers_.empty() || expected_posts_ > 0 || away_ > 0 ||
               incoming_count_.load(std::memory_order_relaxed) > 0 ||
               io_->waiting() > (wake_.state == detail::op_state::waiting ? 1u : 0u);
    }

    // One loop iteration: collect I/O completions (without blocking when tasks
    // are ready, and no longer than the next timer), fire due timers, then
    // resume what was ready. False when nothing can happen any more.
    bool turn() {
        if (io_->orphaned()) detail::io_backend::refuse_after_fork(); // a task called fork(): this is the child
        if (!has_work()) return false;
        int timeout = -1;
        if (!ready_.empty())
            timeout = 0;
        else if (detail::timer_node* t = timers_.top())
            timeout = detail::remaining_ms(t->when);
        io_->wait(ready_, timeout);
        ++stats_.waits;
        fire_timers();
        // Run about one batch (frames destroyed meanwhile leave the queue, so
        // the count may overshoot into new arrivals, harmlessly), then poll I/O.
        for (std::size_t n = ready_.size(); n > 0 && !stop_requested_.load(std::memory_order_relaxed); --n) {
            detail::ready_node* node = ready_.pop_front();
            if (!node) break;
            node->state = detail::op_state::idle;
            inline_budget_ = inline_budget;
            ++stats_.resumes;
            if (node->callback)
                node->callback(*node);
            else
                node->handle.resume();
        }
        deliver_exceptions();
        return true;
    }

    void fire_timers() noexcept {
        if (timers_.empty()) return;
        auto now = detail::clock::now();
        while (detail::timer_node* t = timers_.top()) {
            if (t->when > now) break;
            timers_.erase(*t);
            t->fire(*t);
        }
    }

    // The wake-up op completed: drain the waker, queue what other threads
    // posted, run the posted functions, re-arm.
    void run_posted() {
        detail::sys::drain(waker_);
        std::vector<std::function<void()>> batch;
        {
            std::lock_guard lock(post_mutex_);
            batch.swap(posted_);
            while (detail::ready_node* n = incoming_.pop_front()) {
                if (n->callback == &posted_task) { // a task posted to start here: now this scheduler's
                    n->callback = nullptr;
                    keep(promise_of_start(*n));
                }
                schedule(*n);
            }
            incoming_count_.store(0, std::memory_order_relaxed);
        }
        io_->arm(wake_);
        for (auto& fn : batch) try {
                fn();
            } catch (...) { // as from a spawned task: the others of the batch still run
                failures_.push_back(std::current_exception());
            }
    }

    // A task this scheduler owns ended, maybe on another scheduler's thread
    // (resume_on): then it comes back here to be counted and destroyed.
    void task_finished(detail::promise_base& p) noexcept override {
        if (current_ != this) {
            p.start.callback = [](detail::ready_node& n) {
                auto& back = promise_of_start(n);
                auto& s = static_cast<scheduler&>(*back.owner);
                back.away = false;
                s.count_away(-1);
                s.finished_here(back);
            };
            post_node(p.start);
            return;
        }
        finished_here(p);
    }
    void finished_here(detail::promise_base& p) noexcept {
        if (!p.detached) return; // run()'s own task: run() sees it done
        detached_.erase(p);
        spawned_.store(detached_.size(), std::memory_order_relaxed);
        if (p.exception) failures_.push_back(std::move(p.exception));
        p.start.handle.destroy();
    }
    detail::loop& owner_loop() noexcept override { return *this; }

    // Nodes posted from other threads and not yet queued: left idle, their
    // frames are someone else's to destroy (see ~scheduler).
    // Tasks posted and not started are destroyed here (outside the lock:
    // their frames may take back nodes of their own).
    void drop_incoming() noexcept {
        detail::intrusive_list<detail::ready_node> left;
        {
            std::lock_guard lock(post_mutex_);
            while (detail::ready_node* n = incoming_.pop_front()) left.push_back(*n);
            incoming_count_.store(0, std::memory_order_relaxed);
        }
        while (detail::ready_node* n = left.pop_front()) {
            n->state = detail::op_state::idle;
            if (n->callback == &posted_task) n->handle.destroy();
        }
    }
    static void posted_task(detail::ready_node&) noexcept {}

    void deliver_exceptions() {
        while (!failures_.empty()) {
            std::exception_ptr e = std::move(failures_.front());
            failures_.erase(failures_.begin());
            if (handler_)
                handler_(e);
            else
                print_exception(e);
        }
    }

    static void print_exception(std::exception_ptr e) noexcept {
        try {
            std::rethrow_exception(e);
        } catch (const cancelled_error&) { // stopped as asked: not an error
        } catch (const std::exception& ex) {
            std::fprintf(stderr, "cosock: a spawned task or posted function ended with an exception: %s\n", ex.what());
        } catch (...) {
            std::fprintf(stderr, "cosock: a spawned task or posted function ended with a non-standard exception\n");
        }
    }

    detail::intrusive_list<detail::promise_base> detached_;
    std::vector<std::exception_ptr> failures_;
    exception_handler handler_;
    std::atomic<bool> running_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<std::size_t> spawned_{0}; // detached_.size(), readable from any thread
    scheduler_stats stats_;
    struct wake_op : detail::io_op {
        scheduler* owner = nullptr;
    } wake_;                                    // waits on waker_ while a run() is active
    std::vector<std::function<void()>> posted_; // guarded by post_mutex_
    static inline thread_local scheduler* current_ = nullptr;

    friend detail::loop& detail::loop_of(scheduler&) noexcept;
};

inline detail::loop& detail::loop_of(scheduler& s) noexcept { return s; }

inline detail::loop* detail::current_loop() noexcept {
    scheduler* s = scheduler::current();
    return s ? &loop_of(*s) : nullptr;
}

inline void detail::take_back_from(loop* l, ready_node& n) noexcept { l->take_back_posted(n); }

// The task is done: its start node is free to carry its caller home.
inline std::coroutine_handle<> detail::resume_elsewhere(promise_base& p) noexcept {
    p.start.handle = p.continuation;
    p.start.callback = nullptr;
    p.caller_loop->post_node(p.start);
    return std::noop_coroutine();
}

} // namespace cosock
