// select(2): available everywhere, but an fd_set holds only descriptors below
// FD_SETSIZE; a larger one is refused with an error, never written past the set.
// Made by backend.hpp; driven through io_backend (see readiness_backend).
#pragma once

#include <string>
#include <system_error>

#include <cosock/detail/readiness_backend.hpp>

namespace cosock::detail {

class select_backend final : public readiness_backend {
  public:
    select_backend() noexcept {
        FD_ZERO(&read_);
        FD_ZERO(&write_);
    }

    const char* name() const noexcept override { return "select"; }

    void arm(io_op& op) override {
        if (op.fd < 0 || op.fd >= FD_SETSIZE)
            throw std::system_error(std::make_error_code(std::errc::value_too_large),
                                    "select backend cannot wait on descriptor " + std::to_string(op.fd) +
                                        ": select() handles only descriptors below FD_SETSIZE (" +
                                        std::to_string(FD_SETSIZE) + "); use the poll backend");
        readiness_backend::arm(op);
    }

    void wait(ready_queue& ready, int timeout_ms) override {
        if (timeout_ms != 0 && end_gone_foreign(ready)) timeout_ms = 0;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        fd_set r, w;
        int n;
        for (;;) {
            r = read_;
            w = write_;
            timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
            n = sys::select(max_fd_ + 1, &r, &w, nullptr, timeout_ms < 0 ? nullptr : &tv);
            if (n != -EINTR) break;
            if (timeout_ms > 0) timeout_ms = remaining_ms(deadline);
        }
        if (n == -EBADF) return fail_closed(ready);
        if (n < 0) throw std::system_error(-n, std::system_category(), "select");
        for (int fd = 0; fd <= max_fd_ && n > 0; ++fd) {
            bool rd = FD_ISSET(fd, &r), wr = FD_ISSET(fd, &w);
            if (!rd && !wr) continue;
            n -= rd + wr;
            dispatch(fd, rd, wr, ready, true);
        }
    }

  private:
    void interest(int fd, bool read, bool write) override {
        if (read)
            FD_SET(fd, &read_);
        else
            FD_CLR(fd, &read_);
        if (write)
            FD_SET(fd, &write_);
        else
            FD_CLR(fd, &write_);
        if (read || write) {
            if (fd > max_fd_) max_fd_ = fd;
        } else if (fd == max_fd_) {
            while (max_fd_ >= 0 && !FD_ISSET(max_fd_, &read_) && !FD_ISSET(max_fd_, &write_)) --max_fd_;
        }
    }

    // A descriptor was closed behind our back: select() refuses the whole set,
    // so find the culprits and fail only their ops.
    void fail_closed(ready_queue& ready) noexcept {
        for (int fd = 0; fd <= max_fd_; ++fd)
            if ((FD_ISSET(fd, &read_) || FD_ISSET(fd, &write_)) && !sys::is_open(fd))
                fail_all(fd, -EBADF, end_reason::none, ready);
    }

    fd_set read_;
    fd_set write_;
    int max_fd_ = -1;
};

} // namespace cosock::detail
