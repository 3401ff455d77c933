// epoll(7): each descriptor is registered once, edge-triggered for both
// directions, the first time an op waits on it, and never modified again: no
// epoll_ctl per operation. Edge-triggering reports a change only once, so an
// op armed while its direction is not known to be drained (no op has been told
// EAGAIN since the last edge) is tried at the next wait instead of waiting for
// an edge that may already have passed; an op armed `tried` marks its
// direction drained, so it sleeps until the next edge.
//
// A descriptor cosock does not own (a raw int given to select()) may be closed
// behind the backend's back, which removes it from the epoll set silently.
// Such a descriptor is registered only while ops wait on it; before the loop
// blocks, those descriptors are checked (readiness_backend::end_gone_foreign),
// and the ops of one closed or reopened complete with EBADF.
#pragma once

#include <cosock/detail/os_category.hpp>

#include <cstdint>
#include <string>
#include <sys/epoll.h>
#include <system_error>
#include <utility>
#include <vector>

#include <cosock/detail/readiness_backend.hpp>

namespace cosock::detail {

class epoll_backend final : public readiness_backend {
  public:
    epoll_backend() : readiness_backend(false), epfd_(sys::epoll_create()) {
        if (epfd_ < 0) throw std::system_error(-epfd_, os_category(), "epoll_create1");
    }
    ~epoll_backend() override { sys::close(epfd_); }
    epoll_backend(const epoll_backend&) = delete;
    epoll_backend& operator=(const epoll_backend&) = delete;

    const char* name() const noexcept override { return "epoll"; }

    void arm(io_op& op) override { arm_here(op); }

    /// arm(), for the scheduler's direct call: the common case (an owned op
    /// on a registered descriptor) inline, the rest out of line.
    [[gnu::always_inline]] void arm_here(io_op& op) {
        std::size_t fd = std::size_t(op.fd);
        if (fd < fds_.size() && (fds_[fd].flags & (registered | transient)) == registered && !op.foreign) [[likely]] {
            fd_state& st = fds_[fd];
            bool again = needs_recheck(op, st); // may allocate: before the op is linked
            st.of(op.type->dir).push_back(op);
            armed(op, st);
            if (again) recheck(st, op.fd);
            return;
        }
        arm_other(op);
    }

    void cancel(io_op& op, ready_queue& ready) noexcept override {
        readiness_backend::cancel(op, ready);
        drop_if_unused(op.fd, true);
    }

    void release_fd(int fd, bool closing, ready_queue& ready) noexcept override {
        if (fd < 0 || std::size_t(fd) >= fds_.size()) return;
        std::uint8_t flags = fds_[std::size_t(fd)].flags;
        readiness_backend::release_fd(fd, closing, ready); // forgets the flags
        if (!(flags & registered)) return;
        // A closed descriptor leaves the epoll set by itself; a detached one
        // stays open, so it is removed before the user gets it.
        if (!closing && !orphaned()) sys::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    }

    void wait(ready_queue& ready, int timeout_ms) override {
        if (orphaned()) refuse_after_fork();
        if (rechecks_pending()) timeout_ms = 0;
        if (timeout_ms != 0 && end_gone_foreign(ready)) timeout_ms = 0;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        int n;
        while ((n = sys::epoll_wait(epfd_, events_.data(), int(events_.size()), timeout_ms)) == -EINTR)
            if (timeout_ms > 0) timeout_ms = remaining_ms(deadline);
        if (n < 0) throw std::system_error(-n, os_category(), "epoll_wait");
        for (int i = 0; i < n; ++i) {
            int fd = events_[std::size_t(i)].data.fd;
            std::uint32_t ev = events_[std::size_t(i)].events;
            fd_state& st = fds_[std::size_t(fd)];
            std::uint8_t f = st.flags;
            if (!(f & registered)) [[unlikely]]
                continue;
            if (ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) [[unlikely]] {
                f |= sticky;
                if (ev & (EPOLLERR | EPOLLHUP)) ev |= EPOLLIN | EPOLLOUT; // errors count as both directions
            }
            if (ev & (EPOLLIN | EPOLLRDHUP)) f &= std::uint8_t(~drained_read);
            if (ev & EPOLLOUT) f &= std::uint8_t(~drained_write);
            st.flags = f;
            run_ready(st, ready, true);
        }
        if (std::size_t(n) == events_.size()) events_.resize(events_.size() * 2);
        run_rechecks(ready); // ops armed while their descriptor may already have been ready
    }

  private:
    static constexpr std::uint8_t registered = first_free_bit,
                                  transient = first_free_bit << 1; // registered for a foreign descriptor

    // arm() for a descriptor not registered (or registered only for a
    // foreign op), or for a foreign op.
    [[gnu::noinline]] void arm_other(io_op& op) {
        std::size_t fd = std::size_t(op.fd);
        std::uint8_t f = fd < fds_.size() ? fds_[fd].flags : 0;
        if ((f & (registered | transient)) != registered) { // not registered, or only for a foreign op
            if (orphaned()) refuse_after_fork();            // the epoll set is shared with the parent
            if (!(f & registered))
                enroll(op.fd, op.foreign);
            else if (!op.foreign)
                adopt(op.fd);
        }
        fd_state& st = fds_[fd];
        bool again = needs_recheck(op, st);
        if (op.foreign) add_foreign(op.fd);
        st.of(op.type->dir).push_back(op);
        armed(op, st);
        if (again) recheck(st, op.fd);
    }

    // The first op on `fd` registers it; an owned descriptor stays registered
    // until it is released. The registration itself reports the current
    // readiness as an edge.
    void enroll(int fd, bool foreign) {
        hold_fd(fds_, fd);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.fd = fd;
        if (int r = sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev); r < 0)
            throw std::system_error(-r, os_category(), "epoll_ctl(ADD, " + std::to_string(fd) + ")");
        fds_[std::size_t(fd)].flags = foreign ? registered | transient : registered;
    }

    // An owned op waits on a descriptor registered as foreign: cosock owns it
    // now. If the foreign descriptor was closed and its number reused, its
    // registration went with it: register the new one.
    void adopt(int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.fd = fd;
        int r = sys::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
        if (r == -ENOENT) r = sys::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
        if (r < 0) throw std::system_error(-r, os_category(), "epoll_ctl(ADD, " + std::to_string(fd) + ")");
        std::uint8_t& f = fds_[std::size_t(fd)].flags;
        f = std::uint8_t(f & ~(transient | drained_read | drained_write));
    }

    // A foreign descriptor with no op waiting leaves the epoll set, so that no
    // registration outlives what cosock knows of it.
    void drop_if_unused(int fd, bool still_open) noexcept {
        fd_state& st = fds_[std::size_t(fd)];
        if (!(st.flags & transient) || !st.idle()) return;
        if (still_open && !orphaned()) sys::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        st.flags = 0;
    }

    // Its registration went with the file that was closed.
    void forget_gone(int fd) noexcept override { drop_if_unused(fd, false); }


    // Performs the ops of the directions not known to be drained, as
    // dispatch does (without interest to follow). `edge`: reported by the
    // last epoll_wait, not a recheck of a guess (a reported end of stream or
    // error stays as good as an edge). The write side's flag is read once the
    // reads ran, which cannot change it.
    [[gnu::always_inline]] void run_ready(fd_state& st, ready_queue& ready, bool edge) noexcept {
        std::uint8_t f = st.flags = std::uint8_t(st.flags & ~queued);
        if (!(f & registered)) [[unlikely]]
            return; // released since
        if (!(f & drained_read) && !st.readers.empty()) run<direction::read>(st, ready, edge || (st.flags & sticky));
        if (!(st.flags & drained_write) && !st.writers.empty())
            run<direction::write>(st, ready, edge || (st.flags & sticky));
        if (st.flags & transient) [[unlikely]]
            drop_if_unused(int(&st - fds_.data()), true);
    }

    void run_recheck(fd_state& st, int, ready_queue& ready) noexcept override { run_ready(st, ready, false); }

    int epfd_;
    std::vector<epoll_event> events_ = std::vector<epoll_event>(256);
};

} // namespace cosock::detail
