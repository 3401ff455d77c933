// A descriptor shared by a socket and the file objects made from it. As in
// Python, the descriptor is closed when its last owner is, not before.
//
// The block is allocated by the first socket::makefile() only: a socket that
// never makes a file object never allocates one (accept stays allocation-free).
// File objects point at the block, never at the socket, which is move-only and
// moves around.
#pragma once

#include <stdexcept>
#include <utility>

#include <cosock/detail/io_awaiter.hpp>
#include <cosock/detail/sys.hpp>
#include <cosock/scheduler.hpp>

namespace cosock::detail {

/// One owning reference to a shared descriptor; copying adds an owner.
class shared_fd {
  public:
    shared_fd() noexcept = default;
    /// Starts sharing `fd` with this reference as its only owner.
    static shared_fd adopt(const scheduler_ref& s, int fd) {
        shared_fd r;
        r.b_ = new block{s, fd, 1};
        return r;
    }

    shared_fd(const shared_fd& other) noexcept : b_(other.b_) {
        if (b_) ++b_->owners;
    }
    shared_fd(shared_fd&& other) noexcept : b_(std::exchange(other.b_, nullptr)) {}
    shared_fd& operator=(shared_fd other) noexcept {
        std::swap(b_, other.b_);
        return *this;
    }
    ~shared_fd() { reset(); }

    explicit operator bool() const noexcept { return b_ != nullptr; }
    /// The descriptor, or -1 once detached. Precondition: *this is not empty.
    int fd() const noexcept { return b_->fd; }
    /// The scheduler; throws std::logic_error once it is destroyed.
    scheduler& sched() const {
        scheduler* s = b_->sched.get();
        if (!s) throw std::logic_error("file_object: its socket's scheduler was destroyed");
        return *s;
    }
    /// The socket's timeout, which its file objects' operations use too.
    timeout_t timeout() const noexcept { return b_->timeout; }
    void set_timeout(timeout_t t) noexcept { b_->timeout = t; }

    /// The descriptor now belongs to another scheduler (socket::move_to).
    void rebind(const scheduler_ref& s) noexcept { b_->sched = s; }

    /// Hands the descriptor to someone else: no owner will close it, and the
    /// others see -1 (their operations fail with EBADF, as in Python).
    void disown() noexcept { b_->fd = -1; }

    /// Drops this reference; the last one closes the descriptor as
    /// socket::close() does, resuming operations still waiting on it with
    /// EBADF (or just closes it, once the scheduler is gone).
    void reset() noexcept {
        block* b = std::exchange(b_, nullptr);
        if (!b || --b->owners > 0) return;
        if (b->fd >= 0) {
            if (scheduler* s = b->sched.get()) {
                loop& l = loop_of(*s);
                l.io().release_fd(b->fd, true, l.ready());
            }
            sys::close(b->fd);
        }
        delete b;
    }

  private:
    struct block {
        scheduler_ref sched;
        int fd;
        unsigned owners;
        timeout_t timeout = no_timeout;
    };
    block* b_ = nullptr;
};

} // namespace cosock::detail
