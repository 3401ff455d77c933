// Shared part of the readiness backends (select, poll, epoll): per-descriptor
// FIFO lists of waiting ops. When a descriptor is ready its ops are performed in order until
// one says -EAGAIN again, so a spurious wake-up never reaches the coroutine.
#pragma once

#include <vector>

#include <cosock/detail/backend.hpp>

namespace cosock::detail {

class readiness_backend : public backend {
  public:
    void arm(io_op& op) override {
        if (std::size_t(op.fd) >= fds_.size()) fds_.resize(std::size_t(op.fd) + 1);
        waiters& w = fds_[std::size_t(op.fd)];
        bool was_r = !w.readers.empty(), was_w = !w.writers.empty();
        (wants_read(op.kind) ? w.readers : w.writers).push_back(op);
        try {
            update(op.fd, w, was_r, was_w);
        } catch (...) {
            (wants_read(op.kind) ? w.readers : w.writers).erase(op);
            throw;
        }
        op.state = op_state::waiting;
        ++waiting_;
    }

    void cancel(io_op& op, ready_queue&) noexcept override {
        waiters& w = fds_[std::size_t(op.fd)];
        bool was_r = !w.readers.empty(), was_w = !w.writers.empty();
        (wants_read(op.kind) ? w.readers : w.writers).erase(op);
        op.state = op_state::idle;
        --waiting_;
        update(op.fd, w, was_r, was_w);
    }

    void abort(io_op& op, ready_queue& ready) noexcept override {
        cancel(op, ready);
        complete(op, -ECANCELED, ready);
    }

    void release_fd(int fd, bool, ready_queue& ready) noexcept override {
        if (fd < 0 || std::size_t(fd) >= fds_.size()) return;
        fail_all(fd, -ECANCELED, ready);
    }

    std::size_t waiting() const noexcept override { return waiting_; }

  protected:
    /// `follows_interest`: the backend is told (interest()) whenever the
    /// directions waited for on a descriptor change, as select and poll need;
    /// epoll registers each descriptor once and is not told.
    explicit readiness_backend(bool follows_interest = true) noexcept : follows_interest_(follows_interest) {}

    struct waiters {
        intrusive_list<io_op> readers;
        intrusive_list<io_op> writers;
    };

    /// The directions of interest changed for `fd`. Only adding interest may
    /// throw (allocation); removing it never does.
    virtual void interest(int /*fd*/, bool /*read*/, bool /*write*/) {}

    struct drained {
        bool read = false, write = false; // an op was told EAGAIN in that direction
    };

    /// Performs the ops of a ready descriptor; errors count as both directions.
    drained dispatch(int fd, bool readable, bool writable, ready_queue& ready) noexcept {
        waiters& w = fds_[std::size_t(fd)];
        bool was_r = !w.readers.empty(), was_w = !w.writers.empty();
        drained d;
        if (readable) d.read = run(w.readers, ready);
        if (writable) d.write = run(w.writers, ready);
        update(fd, w, was_r, was_w);
        return d;
    }

    /// Completes every op waiting on `fd` with `res` (e.g. the fd went bad).
    void fail_all(int fd, int res, ready_queue& ready) noexcept {
        waiters& w = fds_[std::size_t(fd)];
        bool was_r = !w.readers.empty(), was_w = !w.writers.empty();
        for (auto* list : {&w.readers, &w.writers})
            while (io_op* op = list->pop_front()) {
                --waiting_;
                complete(*op, res, ready);
            }
        update(fd, w, was_r, was_w);
    }

    std::vector<waiters> fds_;

  private:
    // True when an op found the direction not ready after all.
    bool run(intrusive_list<io_op>& list, ready_queue& ready) noexcept {
        while (io_op* op = list.front()) {
            int res = perform(*op);
            if (res == -EAGAIN) return true; // FIFO: later ops wait their turn
            list.erase(*op);
            --waiting_;
            complete(*op, res, ready);
        }
        return false;
    }

    void update(int fd, waiters& w, bool was_r, bool was_w) {
        if (!follows_interest_) return;
        bool r = !w.readers.empty(), wr = !w.writers.empty();
        if (r != was_r || wr != was_w) interest(fd, r, wr);
    }

    std::size_t waiting_ = 0;
    const bool follows_interest_;
};

} // namespace cosock::detail
