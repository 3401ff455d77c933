// wait_slot: what every suspended awaiter waits with besides its own work: the
// node the loop resumes it through, a deadline on the loop's timers, and a
// callback on its task's stop token. The deadline and the stop callback are
// built only when used (an operation without them never writes or reads their
// bytes, which keeps the frame lines an I/O touches few), and settle() takes
// back whatever was built, so an awaiter whose frame is destroyed leaves
// nothing behind in the scheduler.
//
// Used by io_awaiter (the node is its io_op), sleep, select's waiter,
// to_thread and with_timeout. `Owner` is told why its wait ends early:
// `owner->on_end(end_reason::deadline)` when the deadline passes,
// `owner->on_end(end_reason::stop)` when the stop token is triggered, both on
// the loop thread.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>

#include <cosock/detail/io_op.hpp>
#include <cosock/detail/timer_heap.hpp>
#include <cosock/scheduler.hpp>
#include <cosock/task.hpp>

namespace cosock::detail {

/// The stop token of the task behind `h`, or nullptr for a coroutine that is
/// not a cosock task.
template <class Promise>
const std::stop_token* stop_token_of(std::coroutine_handle<Promise> h) noexcept {
    if constexpr (std::is_base_of_v<promise_base, Promise>)
        return &h.promise().stop;
    else
        return nullptr;
}

template <class Owner, class Node = ready_node>
class wait_slot {
  public:
    explicit wait_slot(loop& l) noexcept : loop_(&l) {}
    wait_slot(const wait_slot&) = delete;
    wait_slot& operator=(const wait_slot&) = delete;
    ~wait_slot() { settle(); }

    loop& owner_loop() const noexcept { return *loop_; }

    /// `owner->on_end(end_reason::deadline)` at `when`, unless settled first.
    void start_deadline(Owner* owner, clock::time_point when) {
        deadline& d = *std::construct_at(&deadline_.value);
        d.owner = owner;
        d.when = when;
        d.fire = [](timer_node& t) noexcept { static_cast<deadline&>(t).owner->on_end(end_reason::deadline); };
        extras_ |= has_deadline; // before add_timer: settle() must find it even if it throws
        loop_->add_timer(d);
    }
    /// Whether the deadline was started and has not passed (nor been settled).
    bool deadline_pending() const noexcept { return (extras_ & has_deadline) && deadline_.value.armed(); }

    /// `owner->on_end(end_reason::stop)` when `token` is triggered, unless
    /// settled first. Nothing for a null token or one that cannot be stopped.
    /// A token already triggered calls it at once.
    void listen(Owner* owner, const std::stop_token* token) {
        if (!token || !token->stop_possible()) return;
        stop_listener& l = *std::construct_at(&stop_.value);
        l.node.owner = owner;
        extras_ |= has_stop_callback; // before the callback is made: it may run at once
        std::construct_at(&l.callback.value, *token, on_stop{this});
    }

    /// Puts the node on the ready queue: the loop resumes it next.
    void resume_soon() noexcept { loop_->schedule(node); }

    /// Drops the deadline and the stop callback: neither fires after this.
    /// (A stop callback running on another thread is waited for.) Touches
    /// the loop only for what is still registered there: a scheduler that is
    /// destroyed first leaves nothing registered (see ~scheduler).
    [[gnu::always_inline]] void disarm() noexcept {
        if (extras_) drop_extras();
    }

    /// disarm(), and the node taken back from wherever it is: the backend
    /// (an operation still waiting is cancelled) or the ready queue.
    [[gnu::always_inline]] void settle() noexcept {
        disarm();
        if (node.state != op_state::idle) take_back();
    }

    [[gnu::noinline]] void take_back() noexcept {
        if constexpr (std::is_base_of_v<io_op, Node>)
            loop_->forget(node);
        else
            loop_->take_back_posted(node); // in the ready queue, or posted from another thread
        node.state = op_state::idle;
    }

    /// Throws std::logic_error unless the loop this slot waits on is the one
    /// running on this thread: an operation made on one scheduler is awaited
    /// on it (its scheduler may be gone, or not be running here).
    void check_running(const char* what) const {
        scheduler* s = scheduler::current();
        if (!s || &loop_of(*s) != loop_) [[unlikely]]
            not_running(what);
    }

    Node node;

  private:
    [[gnu::noinline]] void drop_extras() noexcept {
        if (extras_ & has_deadline) {
            if (deadline_.value.armed()) loop_->cancel_timer(deadline_.value);
            std::destroy_at(&deadline_.value);
        }
        if (extras_ & has_stop_callback) {
            stop_listener& l = stop_.value;
            std::destroy_at(&l.callback.value); // waits for a callback running on another thread
            if (l.node.state != op_state::idle) loop_->take_back_posted(l.node);
            std::destroy_at(&l);
        }
        extras_ = 0;
    }

    [[noreturn]] [[gnu::cold, gnu::noinline]] static void not_running(const char* what) {
        throw std::logic_error(std::string("cosock: ") + what +
                               ": awaited outside the scheduler it was made on (is that scheduler running on this "
                               "thread, or was it destroyed?)");
    }

    // Storage for a member built only when needed (extras_ says which are).
    template <class T>
    union built_on_demand {
        built_on_demand() noexcept {}
        ~built_on_demand() {}
        T value;
    };

    struct deadline : timer_node {
        Owner* owner;
    };
    // A stop requested on the loop's thread ends the wait at once; one
    // requested on another thread (a task that moved there with resume_on,
    // when_any's winner over there) is carried to the loop's thread, which
    // alone touches the loop.
    struct stop_node : ready_node {
        Owner* owner = nullptr;
    };
    struct on_stop {
        wait_slot* slot;
        void operator()() const noexcept {
            loop* here = current_loop();
            if (here == slot->loop_) {
                slot->stop_.value.node.owner->on_end(end_reason::stop);
                return;
            }
            stop_node& n = slot->stop_.value.node;
            n.callback = [](ready_node& r) { static_cast<stop_node&>(r).owner->on_end(end_reason::stop); };
            slot->loop_->post_node(n);
        }
    };
    static constexpr std::uint8_t has_deadline = 1, has_stop_callback = 2;
    loop* loop_;
    std::uint8_t extras_ = 0;
    built_on_demand<deadline> deadline_;
    // The node and the callback together, built only when a stop is possible:
    // an operation without a stop token never writes their bytes.
    struct stop_listener {
        stop_node node;
        built_on_demand<std::stop_callback<on_stop>> callback; // made after node: it may run at once
    };
    built_on_demand<stop_listener> stop_;
};

} // namespace cosock::detail
