// Every system call cosock makes goes through here (liburing's own calls
// aside, which already return -errno). Each wrapper retries EINTR (PEP 475)
// and returns the result, or -errno on failure: the same shape as an io_uring
// completion, so one error path serves every backend. A port to another
// system replaces this file and the backends' descriptor tables.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cosock::detail::sys {

/// Runs `call` until it is not interrupted; returns its result or -errno.
template <class Call>
inline long retry(Call call) noexcept {
    for (;;) {
        long r = call();
        if (r >= 0) return r;
        if (errno != EINTR) return -errno;
    }
}

// Linux caps one read or write at this many bytes; capping here keeps every
// result inside an int, which is what an io_uring completion can carry.
inline constexpr std::size_t max_io = 0x7ffff000;
inline std::size_t cap(std::size_t n) noexcept { return n < max_io ? n : max_io; }

inline int socket(int family, int type, int proto) noexcept {
    return int(retry([&] { return ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto); }));
}
inline int socketpair(int family, int type, int proto, int fds[2]) noexcept {
    return int(retry([&] { return ::socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto, fds); }));
}
inline int set_nonblocking(int fd) noexcept {
    long flags = retry([&] { return ::fcntl(fd, F_GETFL); });
    if (flags < 0) return int(flags);
    if (flags & O_NONBLOCK) return 0;
    return int(retry([&] { return ::fcntl(fd, F_SETFL, int(flags) | O_NONBLOCK); }));
}
/// Whether `fd` is an open descriptor of this process.
inline bool is_open(int fd) noexcept {
    return retry([&] { return ::fcntl(fd, F_GETFD); }) >= 0;
}
inline int set_cloexec(int fd) noexcept {
    return int(retry([&] { return ::fcntl(fd, F_SETFD, FD_CLOEXEC); }));
}
inline int bind(int fd, const sockaddr* sa, socklen_t len) noexcept {
    return int(retry([&] { return ::bind(fd, sa, len); }));
}
inline int listen(int fd, int backlog) noexcept {
    return int(retry([&] { return ::listen(fd, backlog); }));
}
inline int accept(int fd, sockaddr* sa, socklen_t* len) noexcept {
    return int(retry([&] { return ::accept4(fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC); }));
}
// A connect interrupted by a signal keeps going in the kernel; calling it again
// would say EALREADY, so EINTR is reported as "in progress" and finished by
// waiting for writability, as for EINPROGRESS.
inline int connect(int fd, const sockaddr* sa, socklen_t len) noexcept {
    if (::connect(fd, sa, len) == 0) return 0;
    return errno == EINTR ? -EINPROGRESS : -errno;
}
inline int recv(int fd, void* buf, std::size_t len, int flags) noexcept {
    return int(retry([&] { return ::recv(fd, buf, cap(len), flags); }));
}
inline int send(int fd, const void* buf, std::size_t len, int flags) noexcept {
    return int(retry([&] { return ::send(fd, buf, cap(len), flags | MSG_NOSIGNAL); }));
}
/// recv() and send() of an operation's record (its fd, buf, len, flags; a
/// send starts at its `done`), read again at each try: only the record is
/// kept across the call, which keeps the usual single try short.
template <class Op>
inline int recv_of(const Op& op) noexcept {
    return int(retry([&op] { return ::recv(op.fd, op.buf, cap(op.len), op.flags); }));
}
template <class Op>
inline int send_rest_of(const Op& op) noexcept {
    return int(retry([&op] {
        return ::send(op.fd, static_cast<const char*>(op.buf) + op.done, cap(op.len - op.done),
                      op.flags | MSG_NOSIGNAL);
    }));
}
inline int recvmsg(int fd, msghdr* msg, int flags) noexcept {
    return int(retry([&] { return ::recvmsg(fd, msg, flags); }));
}
inline int sendmsg(int fd, const msghdr* msg, int flags) noexcept {
    return int(retry([&] { return ::sendmsg(fd, msg, flags | MSG_NOSIGNAL); }));
}
inline int shutdown(int fd, int how) noexcept {
    return int(retry([&] { return ::shutdown(fd, how); }));
}
// Linux releases the descriptor even when close reports EINTR; retrying could
// close a descriptor another thread has just been given.
inline int close(int fd) noexcept { return ::close(fd) == 0 || errno == EINTR ? 0 : -errno; }
inline int getsockopt(int fd, int level, int name, void* val, socklen_t* len) noexcept {
    return int(retry([&] { return ::getsockopt(fd, level, name, val, len); }));
}
inline int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
    return int(retry([&] { return ::setsockopt(fd, level, name, val, len); }));
}
inline int getsockname(int fd, sockaddr* sa, socklen_t* len) noexcept {
    return int(retry([&] { return ::getsockname(fd, sa, len); }));
}
inline int getpeername(int fd, sockaddr* sa, socklen_t* len) noexcept {
    return int(retry([&] { return ::getpeername(fd, sa, len); }));
}
inline int fstat(int fd, struct stat* st) noexcept {
    return int(retry([&] { return ::fstat(fd, st); }));
}
/// A non-blocking, close-on-exec eventfd counting from 0.
inline int eventfd() noexcept {
    return int(retry([] { return ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }));
}
/// Adds `n` to an eventfd's counter. It cannot fail but by overflowing the
/// counter, which leaves the eventfd readable all the same.
inline void eventfd_add(int fd, std::uint64_t n) noexcept {
    (void)retry([&] { return ::write(fd, &n, sizeof n); });
}
/// Reads an eventfd's counter back to zero (nothing when it already is).
inline void eventfd_take(int fd) noexcept {
    std::uint64_t n;
    (void)retry([&] { return ::read(fd, &n, sizeof n); });
}

inline int epoll_create() noexcept {
    return int(retry([] { return ::epoll_create1(EPOLL_CLOEXEC); }));
}
inline int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) noexcept {
    return int(retry([&] { return ::epoll_ctl(epfd, op, fd, ev); }));
}

// The waits are retried by the backends themselves, which know the time left.
inline int epoll_wait(int epfd, epoll_event* events, int n, int timeout_ms) noexcept {
    int r = ::epoll_wait(epfd, events, n, timeout_ms);
    return r >= 0 ? r : -errno;
}
inline int poll(pollfd* fds, nfds_t n, int timeout_ms) noexcept {
    int r = ::poll(fds, n, timeout_ms);
    return r >= 0 ? r : -errno;
}
inline int select(int nfds, fd_set* r, fd_set* w, fd_set* x, timeval* tv) noexcept {
    int res = ::select(nfds, r, w, x, tv);
    return res >= 0 ? res : -errno;
}

} // namespace cosock::detail::sys
