// An awaiter for a non-blocking step whose effects must never sit in a
// coroutine frame: the step (a recv into a file object's buffer, a send from
// it) runs synchronously, here, and records its own progress; only readiness
// is awaited through the backend. Abandoning the awaiting coroutine at any
// point therefore loses nothing: at worst a readiness wait is forgotten.
//
// A completion backend would rather run the recv itself; it runs this as a
// poll, which every backend supports, so there is one path for all of them.
#pragma once

#include <cerrno>
#include <cstddef>
#include <utility>

#include <cosock/detail/io_awaiter.hpp>
#include <cosock/detail/ops/wait.hpp>
#include <cosock/error.hpp>

namespace cosock::detail {

/// `co_await retry_awaiter(sched, fd, wait_readable, "readline", step)`:
/// runs `step(op)` (→ a result ≥ 0, or -errno), at once if the scheduler agrees,
/// else after the descriptor is ready; → the result, or -EAGAIN when the
/// descriptor was ready but the step still found nothing to do (the caller
/// looks again). Each wait is bounded by `timeout` (the socket's, as in
/// Python, where every underlying recv has the full timeout): timeout_error
/// when it passes; a zero timeout never waits (EAGAIN). Throws cancelled_error
/// for a stop request (before any step if it came first), std::system_error
/// with EBADF if the descriptor is closed while waiting, throw_error(-errno,
/// name) for any other failure.
///
/// A step that receives from a stream sets `op.len` to the room it offered
/// (and the awaiter is made with the least it asks for), under a wait type
/// whose short_means_drained is set (wait_readable_stream):
/// a short receive then tells the backend the queue is empty, so the next
/// step waits for readiness instead of trying a receive that finds nothing,
/// as a socket's own recv does.
template <class Step>
class retry_awaiter : public io_awaiter {
  public:
    /// `slot`, when given, points at this awaiter while it waits, so that its
    /// owner can end the wait (io_awaiter::end) before going away. `len`: the
    /// bytes a receiving step will ask for at least (the backend's guess that
    /// the queue is empty applies only to a receive of something).
    retry_awaiter(scheduler& s, int fd, const op_type& wait, const char* name, Step step, timeout_t timeout,
                  io_awaiter** slot = nullptr, std::size_t len = 0)
        : io_awaiter(loop_of(s), fd, wait, timeout), name_(name), step_(std::move(step)) {
        owner_slot_ = slot;
        op().len = len;
    }
    ~retry_awaiter() { leave_slot(); }

    bool await_ready() noexcept {
        if (op().fd >= 0) return false;
        res_ = -EBADF; // detached: nothing to wait for
        return true;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        bool waits = begin(h, [this] { return res_ = step_(op()); });
        if (waits && owner_slot_) *owner_slot_ = this;
        return waits;
    }
    int await_resume() {
        leave_slot();
        if (res_ == -EAGAIN) {
            // A stop, a deadline, a close, a failed wait, or no room to wait (zero timeout).
            if (int r = settle(); r < 0) fail(r, name_);
            if (never_waits()) throw_error(-EAGAIN, name_);
            if (op().ended_by == end_reason::closed) throw_error(-EBADF, name_); // its owner went: no step
            res_ = step_(op());                                                  // woken: look again
            if (drained_by(op(), res_)) event_loop().io().completed_at_once(op(), res_);
        }
        if (res_ < 0 && res_ != -EAGAIN) throw_error(res_, name_);
        return res_;
    }

  private:
    void leave_slot() noexcept {
        if (owner_slot_ && *owner_slot_ == this) *owner_slot_ = nullptr;
        owner_slot_ = nullptr;
    }

    const char* name_;
    Step step_;
    int res_ = -EAGAIN;
};

} // namespace cosock::detail
