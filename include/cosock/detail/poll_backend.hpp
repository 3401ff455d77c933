// poll(2) (WSAPoll on Windows): no descriptor limit, but the kernel scans
// every registered descriptor on each wait, so a wait costs O(descriptors of
// interest).
// Made by backend.hpp; driven through io_backend (see readiness_backend).
#pragma once

#include <cosock/detail/os_category.hpp>

#include <system_error>
#include <vector>

#include <cosock/detail/readiness_backend.hpp>

namespace cosock::detail {

class poll_backend final : public readiness_backend {
  public:
    const char* name() const noexcept override { return "poll"; }

    void wait(ready_queue& ready, int timeout_ms) override {
        if (rechecks_pending()) timeout_ms = 0;
        if (timeout_ms != 0 && end_gone_foreign(ready)) timeout_ms = 0;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        int n;
        while ((n = sys::poll(pfds_.data(), pfds_.size(), timeout_ms)) == -EINTR)
            if (timeout_ms > 0) timeout_ms = remaining_ms(deadline);
        if (n < 0) throw std::system_error(-n, os_category(), "poll");
        // Dispatching changes pfds_, so take the results out first.
        fired_.clear();
        for (const pollfd& p : pfds_)
            if (p.revents && n-- > 0) fired_.push_back(p);
        for (const pollfd& p : fired_)
            dispatch(int(p.fd), p.revents & (POLLIN | sys::poll_failed | sys::poll_read_ended),
                     p.revents & (POLLOUT | sys::poll_failed), ready, true);
        run_rechecks(ready);
    }

  private:
    void interest(int fd, bool read, bool write) override {
        if (sys::slot(fd) >= index_.size()) index_.resize(fds_.size(), -1);
        int& at = index_[sys::slot(fd)];
        short events = short((read ? POLLIN : 0) | (write ? POLLOUT : 0));
        if (events && at < 0) {
            at = int(pfds_.size());
            pfds_.push_back(sys::make_pollfd(fd, events));
        } else if (events) {
            pfds_[std::size_t(at)].events = events;
        } else if (at >= 0) {
            pfds_[std::size_t(at)] = pfds_.back();
            index_[sys::slot(int(pfds_.back().fd))] = at;
            pfds_.pop_back();
            at = -1;
        }
    }

    std::vector<pollfd> pfds_;
    std::vector<int> index_; // sys::slot(fd) -> position in pfds_, or -1
    std::vector<pollfd> fired_;
};

} // namespace cosock::detail
