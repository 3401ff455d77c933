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
#include <utility>

#include <cosock/detail/io_awaiter.hpp>
#include <cosock/error.hpp>

namespace cosock::detail {

/// `co_await retry_awaiter(sched, fd, wait_readable, "readline", step)`:
/// runs `step()` (→ a result ≥ 0, or -errno), at once if the scheduler's
/// fairness budget allows, else after the descriptor is ready; → the result,
/// or -EAGAIN when the descriptor was ready but the step still found nothing
/// to do (the caller looks again). Each wait is bounded by `timeout` (the
/// socket's, as in Python, where every underlying recv has the full timeout):
/// timeout_error when it passes; a zero timeout never waits (EAGAIN). Throws
/// throw_error(-errno, name) for any other failure, operation_canceled if the
/// descriptor closes while waiting.
template <class Step>
class retry_awaiter : public io_awaiter {
  public:
    retry_awaiter(scheduler& s, int fd, op_kind wait, const char* name, Step step, timeout_t timeout)
        : io_awaiter(s, fd, wait, timeout), name_(name), step_(std::move(step)) {}

    bool await_ready() {
        if (op_.fd < 0)
            res_ = -EBADF; // detached: nothing to wait for
        else if (never_waits() || sched_->try_inline())
            res_ = step_();
        return res_ != -EAGAIN || never_waits();
    }
    // await_suspend: io_awaiter's, which waits for readiness (op_kind wait_*).
    int await_resume() {
        if (res_ == -EAGAIN && never_waits()) throw_error(res_, name_);
        if (res_ == -EAGAIN) {
            if (int r = settle(); r < 0) throw_error(r, name_);
            res_ = step_();
        }
        if (res_ < 0 && res_ != -EAGAIN) throw_error(res_, name_);
        return res_;
    }

  private:
    const char* name_;
    Step step_;
    int res_ = -EAGAIN;
};

} // namespace cosock::detail
