// epoll(7): each descriptor is registered once, edge-triggered for both
// directions, the first time an op waits on it, and never modified again: no
// epoll_ctl per operation. Edge-triggering reports a change only once, so the backend remembers per
// direction whether the descriptor may be ready (an edge came and no op has
// since been told EAGAIN); an op armed while it may be ready is tried at the
// next wait instead of waiting for an edge that already passed.
#pragma once

#include <cstdint>
#include <sys/epoll.h>
#include <system_error>
#include <utility>
#include <vector>

#include <cosock/detail/readiness_backend.hpp>

namespace cosock::detail {

class epoll_backend final : public readiness_backend {
  public:
    epoll_backend() : readiness_backend(false), epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
    }
    ~epoll_backend() override { sys::close(epfd_); }
    epoll_backend(const epoll_backend&) = delete;
    epoll_backend& operator=(const epoll_backend&) = delete;

    const char* name() const noexcept override { return "epoll"; }

    void arm(io_op& op) override {
        std::size_t fd = std::size_t(op.fd);
        if (fd >= state_.size() || !(state_[fd] & registered)) enroll(op.fd);
        readiness_backend::arm(op);
        if (state_[fd] & (wants_read(op.kind) ? may_read : may_write)) recheck(op.fd);
    }

    void release_fd(int fd, bool closing, ready_queue& ready) noexcept override {
        readiness_backend::release_fd(fd, closing, ready);
        if (fd < 0 || std::size_t(fd) >= state_.size() || !(state_[std::size_t(fd)] & registered)) return;
        // A closed descriptor leaves the epoll set by itself; a detached one
        // stays open, so it is removed before the user gets it.
        if (!closing) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        state_[std::size_t(fd)] = 0;
    }

    // Data arriving after the short read raises a new edge, so clearing the bit
    // loses nothing; an edge already collected set the bit again and is kept.
    // The end of the stream and errors are states, not arrivals: once seen they
    // raise no further edge, so a descriptor that reported one stays readable.
    void recv_drained(int fd) noexcept override {
        if (std::size_t(fd) >= state_.size()) return;
        std::uint8_t& st = state_[std::size_t(fd)];
        if (!(st & sticky)) st &= std::uint8_t(~may_read);
    }

    void wait(ready_queue& ready, int timeout_ms) override {
        if (!recheck_.empty()) timeout_ms = 0;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        int n;
        while ((n = ::epoll_wait(epfd_, events_.data(), int(events_.size()), timeout_ms)) < 0 && errno == EINTR)
            if (timeout_ms > 0) timeout_ms = remaining_ms(deadline);
        if (n < 0) throw std::system_error(errno, std::system_category(), "epoll_wait");
        for (int i = 0; i < n; ++i) {
            int fd = events_[std::size_t(i)].data.fd;
            std::uint32_t ev = events_[std::size_t(i)].events;
            bool err = ev & (EPOLLERR | EPOLLHUP);
            std::uint8_t& st = state_[std::size_t(fd)];
            if (ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) st |= sticky;
            if (err || (ev & (EPOLLIN | EPOLLRDHUP))) st |= may_read;
            if (err || (ev & EPOLLOUT)) st |= may_write;
            run_ready(fd, ready);
        }
        if (std::size_t(n) == events_.size()) events_.resize(events_.size() * 2);
        // Ops armed while their descriptor may already have been ready.
        std::vector<int> again = std::exchange(recheck_, std::move(spare_));
        for (int fd : again) run_ready(fd, ready);
        again.clear();
        spare_ = std::move(again);
    }

  private:
    static constexpr std::uint8_t registered = 1, may_read = 2, may_write = 4, queued = 8, sticky = 16;

    // The first op on `fd` registers it, for good. The registration itself
    // reports the current readiness as an edge.
    void enroll(int fd) {
        if (std::size_t(fd) >= state_.size()) state_.resize(std::size_t(fd) + 1, 0);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.fd = fd;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0)
            throw std::system_error(errno, std::system_category(), "epoll_ctl(ADD, " + std::to_string(fd) + ")");
        state_[std::size_t(fd)] = registered;
    }

    void recheck(int fd) {
        std::uint8_t& st = state_[std::size_t(fd)];
        if (st & queued) return;
        recheck_.push_back(fd);
        st |= queued;
    }

    void run_ready(int fd, ready_queue& ready) noexcept {
        std::uint8_t& st = state_[std::size_t(fd)];
        st &= std::uint8_t(~queued);
        if (!(st & registered)) return; // released since
        drained d = dispatch(fd, st & may_read, st & may_write, ready);
        if (d.read) st &= std::uint8_t(~may_read);
        if (d.write) st &= std::uint8_t(~may_write);
    }

    int epfd_;
    std::vector<std::uint8_t> state_; // per fd: registered | may_read | may_write | queued | sticky (EOF, error)
    std::vector<epoll_event> events_ = std::vector<epoll_event>(256);
    std::vector<int> recheck_, spare_;
};

} // namespace cosock::detail
