// The awaiter every I/O operation shares. It holds the operation record, so a
// suspended operation costs no allocation; if the frame is destroyed while the
// operation waits, the destructor takes the record back from the scheduler.
#pragma once

#include <coroutine>

#include <cosock/detail/io_op.hpp>
#include <cosock/scheduler.hpp>

namespace cosock::detail {

class io_awaiter {
  public:
    io_awaiter(const io_awaiter&) = delete;
    io_awaiter& operator=(const io_awaiter&) = delete;

    /// Tries the system call at once (readiness path); suspends only on EAGAIN.
    bool await_ready() noexcept {
        if (!sched_->try_inline()) return false;
        op_.res = perform(op_);
        return op_.res != -EAGAIN;
    }
    /// Hands the record to the backend, which resumes us when it completes.
    void await_suspend(std::coroutine_handle<> h) {
        op_.handle = h;
        sched_->io().arm(op_);
    }

  protected:
    io_awaiter(scheduler& s, int fd, op_kind kind) noexcept : sched_(&s) {
        op_.fd = fd;
        op_.kind = kind;
    }
    ~io_awaiter() {
        if (op_.state != op_state::idle) sched_->forget(op_);
    }

    scheduler* sched_;
    io_op op_;
};

} // namespace cosock::detail
