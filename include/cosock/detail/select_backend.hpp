// select(2): available everywhere, but an fd_set is bounded: on POSIX it
// holds only descriptors below FD_SETSIZE, on Windows at most FD_SETSIZE
// sockets (an array of SOCKETs; platform.hpp raises it to 4096). One beyond
// that is refused with an error, never written past the set.
// Made by backend.hpp; driven through io_backend (see readiness_backend).
#pragma once

#include <string>
#include <system_error>

#include <cosock/detail/os_category.hpp>
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
#if !COSOCK_WINDOWS
        if (op.fd < 0 || op.fd >= FD_SETSIZE)
            throw std::system_error(os_error(std::errc::value_too_large),
                                    "select backend cannot wait on descriptor " + std::to_string(op.fd) +
                                        ": select() handles only descriptors below FD_SETSIZE (" +
                                        std::to_string(FD_SETSIZE) + "); use the poll backend");
#endif
        readiness_backend::arm(op);
    }

    void wait(ready_queue& ready, int timeout_ms) override {
        if (rechecks_pending()) timeout_ms = 0;
        if (timeout_ms != 0 && end_gone_foreign(ready)) timeout_ms = 0;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        fd_set r, w;
#if COSOCK_WINDOWS
        // A failed connect is reported in the exception set only, not as
        // writable; urgent data is reported there too, so only the sockets
        // of connects in progress go in it.
        fd_set x;
#endif
        int n;
        for (;;) {
            r = read_;
            w = write_;
            timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
#if COSOCK_WINDOWS
            x.fd_count = 0;
            for (u_int i = 0; i < write_.fd_count; ++i) {
                const fd_state& st = fds_[sys::slot(sys::descriptor(write_.fd_array[i]))];
                if (!st.writers.empty() && st.writers.front()->type->ends_on_error)
                    x.fd_array[x.fd_count++] = write_.fd_array[i];
            }
            n = sys::select(0, &r, &w, &x, timeout_ms < 0 ? nullptr : &tv);
#else
            n = sys::select(max_fd_ + 1, &r, &w, nullptr, timeout_ms < 0 ? nullptr : &tv);
#endif
            if (n != -EINTR) break;
            if (timeout_ms > 0) timeout_ms = remaining_ms(deadline);
        }
        if (n == -EBADF || n == -ENOTSOCK) {
            fail_closed(ready);
            return run_rechecks(ready);
        }
        if (n < 0) throw std::system_error(-n, os_category(), "select");
#if COSOCK_WINDOWS
        // The sets came back holding only the ready sockets (FD_ISSET is a
        // linear search there, so each list is walked on its own). A socket
        // may be dispatched twice; the second finds its ops gone or again
        // waiting, as after any spurious wake-up.
        for (u_int i = 0; i < r.fd_count; ++i) dispatch(sys::descriptor(r.fd_array[i]), true, false, ready, true);
        for (u_int i = 0; i < w.fd_count; ++i) dispatch(sys::descriptor(w.fd_array[i]), false, true, ready, true);
        for (u_int i = 0; i < x.fd_count; ++i) dispatch(sys::descriptor(x.fd_array[i]), false, true, ready, true);
#else
        for (int fd = 0; fd <= max_fd_ && n > 0; ++fd) {
            bool rd = FD_ISSET(fd, &r), wr = FD_ISSET(fd, &w);
            if (!rd && !wr) continue;
            n -= rd + wr;
            dispatch(fd, rd, wr, ready, true);
        }
#endif
        run_rechecks(ready);
    }

  private:
    void interest(int fd, bool read, bool write) override {
        auto s = sys::handle(fd);
#if COSOCK_WINDOWS
        // FD_SET ignores a socket that does not fit: refuse it instead.
        for (fd_set* set : {&read_, &write_})
            if ((set == &read_ ? read : write) && set->fd_count == FD_SETSIZE && !FD_ISSET(s, set))
                throw std::system_error(os_error(std::errc::value_too_large),
                                        "select backend cannot wait on socket " + std::to_string(fd) + ": " +
                                            std::to_string(FD_SETSIZE) +
                                            " sockets already wait (FD_SETSIZE); use the poll backend");
#endif
        if (read)
            FD_SET(s, &read_);
        else
            FD_CLR(s, &read_);
        if (write)
            FD_SET(s, &write_);
        else
            FD_CLR(s, &write_);
#if !COSOCK_WINDOWS // select's first argument, which Windows ignores
        if (read || write) {
            if (fd > max_fd_) max_fd_ = fd;
        } else if (fd == max_fd_) {
            while (max_fd_ >= 0 && !FD_ISSET(max_fd_, &read_) && !FD_ISSET(max_fd_, &write_)) --max_fd_;
        }
#endif
    }

    // A descriptor was closed behind our back: select() refuses the whole set,
    // so find the culprits and fail only their ops.
    void fail_closed(ready_queue& ready) noexcept {
#if COSOCK_WINDOWS
        for (const fd_set* set : {&read_, &write_}) {
            const fd_set seen = *set; // fail_all takes sockets out of the set
            for (u_int i = 0; i < seen.fd_count; ++i)
                if (int fd = sys::descriptor(seen.fd_array[i]); !sys::is_open(fd))
                    fail_all(fd, -EBADF, end_reason::none, ready);
        }
#else
        for (int fd = 0; fd <= max_fd_; ++fd)
            if ((FD_ISSET(fd, &read_) || FD_ISSET(fd, &write_)) && !sys::is_open(fd))
                fail_all(fd, -EBADF, end_reason::none, ready);
#endif
    }

    fd_set read_;
    fd_set write_;
    int max_fd_ = -1;
};

} // namespace cosock::detail
