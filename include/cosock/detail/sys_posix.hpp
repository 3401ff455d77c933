// The POSIX side of the system-call seam (see sys.hpp).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/sendfile.h>
#endif

#include <cosock/detail/os_category.hpp>
#include <cosock/detail/platform.hpp>

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

/// What the system's calls take for `fd` (on Windows, a SOCKET).
inline int handle(int fd) noexcept { return fd; }

/// Where `fd` sits in a per-descriptor table, and back: descriptors are
/// small numbers, reused lowest first.
inline std::size_t slot(int fd) noexcept { return std::size_t(fd); }
inline int fd_at(std::size_t slot) noexcept { return int(slot); }

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
/// A second descriptor for the same socket (close-on-exec), or -errno.
inline int dup(int fd) noexcept {
    return int(retry([&] { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }));
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
/// Runs `call` (→ a result or -errno) so that it cannot raise SIGPIPE:
/// sendfile(2) and splice(2) have no MSG_NOSIGNAL. SIGPIPE is blocked in this
/// thread for the call, and one the call raised (the kernel sends it to the
/// calling thread with EPIPE) is taken back before it is unblocked; one that
/// was already pending is left alone.
template <class Call>
long without_sigpipe(Call call) noexcept {
    sigset_t pipe, old, pending;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe, &old);
    bool was_pending = sigismember(&old, SIGPIPE) && ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    long r = call();
    if (r == -EPIPE && !was_pending) {
        timespec zero{};
        while (::sigtimedwait(&pipe, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    if (!sigismember(&old, SIGPIPE)) ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return r;
}
/// Copies up to `n` bytes of `file` from `*offset` to the socket in the kernel
/// (Linux's sendfile(2)), advancing `*offset`: the bytes sent, 0 at the end
/// of the file, or -errno (-ENOSYS where there is no such call).
inline long sendfile(int sock, int file, std::uint64_t& offset, std::size_t n) noexcept {
#if defined(__linux__)
    off_t off = off_t(offset);
    long r = without_sigpipe([&] { return retry([&] { return ::sendfile(sock, file, &off, cap(n)); }); });
    if (r > 0) offset = std::uint64_t(off);
    return r;
#else
    (void)sock, (void)file, (void)offset, (void)n;
    return -ENOSYS;
#endif
}
/// Moves up to `n` bytes from the pipe `pipe` to the socket in the kernel
/// (Linux's splice(2)): what the socket does not take stays in the pipe. The
/// bytes moved, 0 when the pipe's writers are gone, or -errno (-ENOSYS where
/// there is no such call).
inline long splice_from_pipe(int sock, int pipe, std::size_t n) noexcept {
#if defined(__linux__)
    return without_sigpipe([&] { return retry([&] { return ::splice(pipe, nullptr, sock, nullptr, cap(n), SPLICE_F_MOVE); }); });
#else
    (void)sock, (void)pipe, (void)n;
    return -ENOSYS;
#endif
}
/// Reads up to `n` bytes of `file` at `offset` (pread): the bytes read, or -errno.
inline long read_file(int file, void* buf, std::size_t n, std::uint64_t offset) noexcept {
    return retry([&] { return ::pread(file, buf, cap(n), off_t(offset)); });
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
/// The socket's pending error (SO_ERROR, which reading clears) as -errno, or 0.
inline int pending_error(int fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    int r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return r < 0 ? r : -err;
}
/// The family, type and protocol of an open socket.
inline int socket_kind(int fd, int& family, int& type, int& proto) noexcept {
    for (auto [name, out] : {std::pair{SO_DOMAIN, &family}, std::pair{SO_TYPE, &type}, std::pair{SO_PROTOCOL, &proto}}) {
        socklen_t len = sizeof *out;
        if (int r = getsockopt(fd, SOL_SOCKET, name, out, &len); r < 0) return r;
    }
    return 0;
}
/// What the socket library needs before its first call: nothing here
/// (WSAStartup on Windows). 0, or -errno.
inline int start_sockets() noexcept { return 0; }

/// Pins the calling thread to the i-th CPU it may run on (modulo their
/// number). 0, or -errno.
inline int pin_this_thread(std::size_t i) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 0;
    std::vector<std::size_t> cpus;
    for (std::size_t c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    if (cpus.empty()) return 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus[i % cpus.size()], &one);
    return -::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
}

/// The name of network interface `index` (false when none has it), and the
/// index of interface `name` (0 when none has it).
/// This machine's host name, NUL-terminated in `name`.
inline int gethostname(char* name, std::size_t len) noexcept {
    int r = ::gethostname(name, len);
    name[len - 1] = '\0';
    return r == 0 ? 0 : -errno;
}
/// getaddrinfo's text for an EAI_* code.
inline std::string gai_message(int eai) { return ::gai_strerror(eai); }
inline bool interface_name(unsigned index, std::string& name) {
    char text[IF_NAMESIZE] = {};
    if (::if_indextoname(index, text) == nullptr) return false;
    name = text;
    return true;
}
inline unsigned interface_index(const char* name) noexcept { return ::if_nametoindex(name); }

/// Whether the read side of `fd` is shut down (a datagram socket after
/// shutdown(SHUT_RD) stays readable with nothing to read).
inline bool read_side_shut(int fd) noexcept {
    pollfd p{fd, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP);
}

/// Which open file a descriptor is (device and inode), to tell a descriptor
/// closed and reused for another file from the one first seen.
struct file_identity {
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const file_identity&) const = default;
};
/// False when `fd` is not an open descriptor.
inline bool identify(int fd, file_identity& id) noexcept {
    struct stat st {};
    if (retry([&] { return ::fstat(fd, &st); }) < 0) return false;
    id = {st.st_dev, st.st_ino};
    return true;
}

/// How other threads (and signal handlers) wake a loop: `fd` becomes
/// readable after wake() and stays so until drain(). Here one non-blocking,
/// close-on-exec eventfd, which is also what a handler may write to.
struct waker {
    int fd = -1;
};
/// 0, or -errno.
inline int open_waker(waker& w) noexcept {
    w.fd = int(retry([] { return ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }));
    return w.fd < 0 ? w.fd : 0;
}
inline void close_waker(waker& w) noexcept {
    if (w.fd >= 0) ::close(w.fd);
    w.fd = -1;
}
/// Adds to the eventfd's counter. It cannot fail but by overflowing the
/// counter, which leaves the eventfd readable all the same. Async-signal-safe.
inline void wake(const waker& w) noexcept {
    std::uint64_t n = 1;
    (void)retry([&] { return ::write(w.fd, &n, sizeof n); });
}
/// Reads the counter back to zero (nothing when it already is).
inline void drain(const waker& w) noexcept {
    std::uint64_t n;
    (void)retry([&] { return ::read(w.fd, &n, sizeof n); });
}

inline int epoll_create() noexcept {
    return int(retry([] { return ::epoll_create1(EPOLL_CLOEXEC); }));
}
inline int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) noexcept {
    return int(retry([&] { return ::epoll_ctl(epfd, op, fd, ev); }));
}

inline pollfd make_pollfd(int fd, short events) noexcept { return {fd, events, 0}; }
/// What poll() calls urgent (out-of-band) data.
inline constexpr short poll_urgent = POLLPRI;
/// The poll() results that wake every waiter, reader and writer alike (the
/// next call reports the error), and those that wake readers only: POLLHUP
/// here means both directions are over.
inline constexpr short poll_failed = POLLERR | POLLHUP | POLLNVAL;
inline constexpr short poll_read_ended = 0;

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
