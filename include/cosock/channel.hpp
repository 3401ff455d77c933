// cosock::channel<T>: a bounded FIFO queue between tasks, on one scheduler or
// on several threads' schedulers (Go's buffered channel, asyncio.Queue with
// a maxsize, and its shutdown()).
//
// `co_await ch.send(v)` waits while the channel is full; `co_await
// ch.receive()` waits while it is empty and gives std::nullopt once it is
// closed and drained. A waiting task sleeps (no polling): the one that makes
// room or brings a value wakes it, through the waiter's own scheduler (at
// once on the same thread, through its incoming queue from another).
//
// How nothing is lost: values stay in the channel's ring until a receiver
// takes them. Waking a receiver reserves one value for it, and waking a
// sender reserves one free place; a new send or receive cannot take what is
// reserved, so a woken task always finds its value or its place. A woken
// task whose frame is destroyed before it runs hands its reservation to the
// next waiter. A waiting task ended by a stop request or a deadline
// (with_timeout) leaves the queue untouched.
//
// How a channel may go first: its lock and a `gone` flag live in a small
// block shared with the tasks waiting on it (each takes a reference when it
// starts to wait). The destructor, under that lock, wakes every waiter and
// marks the block gone; a waiter that ends afterwards, on any thread, takes
// the same lock, sees `gone` and touches the channel no more.
//
// The ring and that block are allocated once, at construction: no
// allocation per message.
// Every member function may be called from any thread; a channel must
// outlive the tasks waiting on it. A task waiting on a channel keeps its
// scheduler's run() going, as a pending operation does, since a task on
// another thread may wake it; a channel nobody will ever feed leaves it
// asleep (as asyncio does), not spinning.
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <cosock/detail/intrusive_list.hpp>
#include <cosock/detail/io_op.hpp>
#include <cosock/detail/wait_slot.hpp>
#include <cosock/error.hpp>
#include <cosock/operation.hpp>
#include <cosock/scheduler.hpp>

namespace cosock {

/// What a send on a closed channel throws (asyncio's QueueShutDown).
class channel_closed : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// A bounded FIFO of T between tasks on any threads, as asyncio.Queue:
/// `co_await send(v)`, `co_await receive()`, try_send/try_receive, close().
template <class T>
class channel {
    struct waiter_node;

  public:
    class send_awaiter;
    class receive_awaiter;
    using send_operation = operation<send_awaiter>;
    using receive_operation = operation<receive_awaiter>;

    /// A channel holding up to `capacity` values. Throws
    /// std::invalid_argument for 0.
    explicit channel(std::size_t capacity) : ring_(capacity) {
        if (capacity == 0) throw std::invalid_argument("cosock::channel: capacity must be at least 1, not 0");
    }
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    /// Ends the tasks still waiting on it as close() does (a frame that
    /// holds a channel may go before the tasks waiting on it, e.g. when a
    /// scheduler_group stops), and makes them forget it. A channel is not
    /// destroyed while another thread is calling it.
    ~channel() {
        std::lock_guard lock(anchor_->mutex);
        closed_ = true;
        anchor_->gone = true;
        while (waiter_node* w = receivers_.pop_front()) wake(*w, false);
        while (waiter_node* w = senders_.pop_front()) wake(*w, false);
        while (granted_.pop_front()) {
        }
    }

    /// `co_await ch.send(v)`: puts `v` at the end, waiting while the channel
    /// is full. Throws channel_closed once the channel is closed (also when
    /// it closes while the sender waits: `v` is then not delivered), and
    /// cancelled_error on a stop request.
    [[nodiscard]] send_operation send(T value) { return send_operation({this, std::move(value)}); }
    /// `co_await ch.receive()`: the value at the front, waiting while the
    /// channel is empty; std::nullopt once it is closed and empty.
    [[nodiscard]] receive_operation receive() { return receive_operation({this}); }

    /// Puts `value` at the end if there is room now (and no sender waits
    /// ahead): true, `value` moved from; false, `value` untouched. Throws
    /// channel_closed on a closed channel. From any thread.
    bool try_send(T& value) {
        std::lock_guard lock(anchor_->mutex);
        if (closed_) throw channel_closed("cosock::channel: send on a closed channel");
        if (!senders_.empty() || free_places() == 0) return false;
        push(std::move(value));
        return true;
    }
    /// The value at the front if one can be taken now, else std::nullopt.
    std::optional<T> try_receive() {
        std::lock_guard lock(anchor_->mutex);
        if (!receivers_.empty() || free_values() == 0) return std::nullopt;
        return pop();
    }

    /// Closes the channel: senders waiting or to come throw channel_closed;
    /// receivers take what is left, then get std::nullopt. Idempotent.
    void close() noexcept {
        std::lock_guard lock(anchor_->mutex);
        closed_ = true;
        while (waiter_node* w = receivers_.pop_front()) wake(*w, false);
        while (waiter_node* w = senders_.pop_front()) wake(*w, false);
    }

    bool closed() const {
        std::lock_guard lock(anchor_->mutex);
        return closed_;
    }
    /// Values in the channel now.
    std::size_t size() const {
        std::lock_guard lock(anchor_->mutex);
        return count_;
    }
    std::size_t capacity() const noexcept { return ring_.size(); }

  private:
    // A waiting task: on its channel's list while it waits, then on its
    // scheduler's queue once woken (`granted`: with a reservation).
    struct grant_link : detail::list_node {
        waiter_node* waiter = nullptr;
    };
    struct waiter_node : detail::ready_node {
        detail::loop* where = nullptr;
        bool listed = false;
        bool granted = false;
        bool used = false; // the reservation was taken when the task ran
        grant_link grant;  // on granted_ while woken with a reservation and not yet run
    };
    // What a waiting task shares with its channel, which may be destroyed
    // first (see the top of this file).
    struct anchor {
        std::mutex mutex;
        bool gone = false; // the channel was destroyed: touch it no more
    };

    // Shared by both awaiters: the wait, its cancellation and its end.
    template <class Self>
    class waiting {
      public:
        waiting(const waiting&) = delete;
        waiting& operator=(const waiting&) = delete;

        bool await_ready() const noexcept { return false; }

        /// Its stop token or deadline ended the wait (loop thread).
        void on_end(detail::end_reason why) noexcept {
            waiter_node& n = slot_.node;
            std::lock_guard lock(anchor_->mutex);
            if (anchor_->gone || !n.listed) return; // already woken: it completes as woken
            list().erase(n);
            n.listed = false;
            ended_ = why;
            slot_.resume_soon();
        }

      protected:
        explicit waiting(channel* ch) : ch_(ch), slot_(detail::loop_of(running("a channel operation"))) {}
        // A task destroyed while it waits, or woken but not yet run, leaves
        // the channel as if it had never come: its reservation goes to the
        // next waiter of its kind.
        ~waiting() {
            waiter_node& n = slot_.node;
            if (anchor_) {
                std::lock_guard lock(anchor_->mutex);
                if (anchor_->gone) {
                } else if (n.listed) {
                    list().erase(n);
                    n.listed = false;
                } else if (n.granted && !n.used) {
                    ch_->granted_.erase(n.grant);
                    Self::release(*ch_);
                }
            }
            if (n.state == detail::op_state::posted || n.state == detail::op_state::queued)
                slot_.owner_loop().take_back_posted(n);
            n.state = detail::op_state::idle;
            uncount();
        }
        void uncount() noexcept {
            if (counted_) slot_.owner_loop().expect_post(-1);
            counted_ = false;
        }

        static scheduler& running(const char* what) {
            scheduler* s = scheduler::current();
            if (!s)
                throw std::logic_error(std::string("cosock::channel: ") + what +
                                       " awaited outside a running scheduler");
            return *s;
        }

        // Waits on `list()`; `lock` is held and released here. False: it ended at once.
        template <class Promise>
        bool wait(std::coroutine_handle<Promise> h, std::unique_lock<std::mutex>& lock) {
            const std::stop_token* token = detail::stop_token_of(h);
            if (token && token->stop_requested()) {
                ended_ = detail::end_reason::stop;
                return false;
            }
            waiter_node& n = slot_.node;
            n.handle = h;
            n.where = &slot_.owner_loop();
            n.where->expect_post(1); // another thread may wake it: the loop waits for it
            counted_ = true;
            anchor_ = ch_->anchor_;
            n.listed = true;
            list().push_back(n);
            lock.unlock();
            slot_.listen(this, token); // may end it at once (on_end)
            return true;
        }

        // After the wait: the deadline and stop callback are gone; throws
        // cancelled_error when a stop request ended it.
        void settle(const char* what) {
            uncount();
            slot_.disarm();
            if (ended_ == detail::end_reason::stop) throw cancelled_error(std::string("cosock::channel: ") + what);
        }

        // The list of waiters of this kind (not through Self: also used while
        // the derived part is being destroyed).
        detail::intrusive_list<waiter_node>& list() noexcept {
            return std::is_same_v<Self, send_awaiter> ? ch_->senders_ : ch_->receivers_;
        }

        channel* ch_;
        std::shared_ptr<anchor> anchor_; // held from the start of a wait
        detail::end_reason ended_ = detail::end_reason::none;
        bool counted_ = false; // in the loop's expected work while it waits
        detail::wait_slot<waiting, waiter_node> slot_;
    };

  public:
    class send_awaiter : public waiting<send_awaiter> {
        using base = waiting<send_awaiter>;
        friend base;

      public:
        struct args {
            channel* ch;
            T value;
        };
        explicit send_awaiter(args a) : base(a.ch), value_(std::move(a.value)) {}

        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            channel& c = *this->ch_;
            std::unique_lock lock(c.anchor_->mutex);
            if (c.closed_) return false; // await_resume throws
            if (c.senders_.empty() && c.free_places() > 0) {
                c.push(std::move(value_));
                return !(sent_ = true);
            }
            return this->wait(h, lock);
        }
        void await_resume() {
            if (sent_) return;
            this->settle("send");
            channel& c = *this->ch_;
            waiter_node& n = this->slot_.node;
            if (this->anchor_) { // it waited (else the channel was closed when it came)
                std::lock_guard lock(this->anchor_->mutex);
                if (n.granted && !this->anchor_->gone) {
                    n.used = true;
                    --c.places_reserved_;
                    c.granted_.erase(n.grant);
                    // Given a place, but the channel closed before this sender
                    // ran: its value is refused like any send after close
                    // (receivers may already have seen the end).
                    if (!c.closed_) {
                        c.push(std::move(value_));
                        return;
                    }
                }
            }
            throw channel_closed("cosock::channel: send on a closed channel");
        }

      private:
        static void release(channel& c) noexcept {
            --c.places_reserved_;
            c.grant_next_sender();
        }
        T value_;
        bool sent_ = false;
    };

    class receive_awaiter : public waiting<receive_awaiter> {
        using base = waiting<receive_awaiter>;
        friend base;

      public:
        struct args {
            channel* ch;
        };
        explicit receive_awaiter(args a) : base(a.ch) {}

        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            channel& c = *this->ch_;
            std::unique_lock lock(c.anchor_->mutex);
            if (c.receivers_.empty() && c.free_values() > 0) {
                value_ = c.pop();
                return false;
            }
            if (c.closed_) return false; // closed and drained: nullopt
            return this->wait(h, lock);
        }
        std::optional<T> await_resume() {
            if (value_) return std::move(value_);
            this->settle("receive");
            if (!this->anchor_) return std::nullopt; // closed and drained: it never waited
            waiter_node& n = this->slot_.node;
            std::lock_guard lock(this->anchor_->mutex);
            if (!n.granted || this->anchor_->gone) return std::nullopt; // closed, or destroyed, while it waited
            channel& c = *this->ch_;
            n.used = true;
            --c.values_reserved_;
            c.granted_.erase(n.grant);
            return c.pop();
        }

      private:
        static void release(channel& c) noexcept {
            --c.values_reserved_;
            c.grant_next_receiver();
        }
        std::optional<T> value_;
    };

  private:
    // All below with anchor_->mutex held.
    std::size_t free_places() const noexcept { return ring_.size() - count_ - places_reserved_; }
    std::size_t free_values() const noexcept { return count_ - values_reserved_; }

    void push(T&& v) {
        ring_[(head_ + count_) % ring_.size()].emplace(std::move(v));
        ++count_;
        grant_next_receiver();
    }
    T pop() {
        std::optional<T>& front = ring_[head_];
        T v = std::move(*front);
        front.reset();
        head_ = (head_ + 1) % ring_.size();
        --count_;
        grant_next_sender();
        return v;
    }
    void grant_next_receiver() noexcept {
        if (free_values() == 0) return;
        if (waiter_node* w = receivers_.pop_front()) {
            ++values_reserved_;
            wake(*w, true);
        }
    }
    void grant_next_sender() noexcept {
        if (closed_ || free_places() == 0) return;
        if (waiter_node* w = senders_.pop_front()) {
            ++places_reserved_;
            wake(*w, true);
        }
    }
    // Resumes `w` on its scheduler's thread: queued at once when that is
    // this thread, else through its incoming queue (the channel's lock is
    // held meanwhile, so a frame being destroyed sees it either listed or
    // posted).
    void wake(waiter_node& w, bool granted) noexcept {
        w.listed = false;
        w.granted = granted;
        if (granted) {
            w.grant.waiter = &w;
            granted_.push_back(w.grant);
        }
        scheduler* here = scheduler::current();
        if (here && &detail::loop_of(*here) == w.where)
            w.where->schedule(w);
        else
            w.where->post_node(w);
    }

    std::shared_ptr<anchor> anchor_ = std::make_shared<anchor>();
    std::vector<std::optional<T>> ring_;
    std::size_t head_ = 0, count_ = 0;
    std::size_t values_reserved_ = 0; // for receivers woken and not yet run
    std::size_t places_reserved_ = 0; // for senders woken and not yet run
    bool closed_ = false;
    detail::intrusive_list<waiter_node> receivers_, senders_;
    detail::intrusive_list<grant_link> granted_; // woken with a reservation, not yet run
};

} // namespace cosock
