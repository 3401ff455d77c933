// Python 3.9's socket.send_fds and socket.recv_fds, descriptors passed over
// a Unix socket (SCM_RIGHTS), and the peer's credentials (SO_PEERCRED), with
// unique_fd owning what arrives: POSIX only (Windows passes sockets with
// WSADuplicateSocket, which cosock does not wrap).
#pragma once

#include <cosock/detail/platform.hpp>

#if COSOCK_WINDOWS
#error "cosock/unix.hpp: SCM_RIGHTS and SO_PEERCRED are POSIX's (see docs/windows.md)"
#endif

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/types.h>

#include <cosock/address.hpp>
#include <cosock/error.hpp>
#include <cosock/message.hpp>
#include <cosock/operation.hpp>
#include <cosock/socket.hpp>

namespace cosock {

/// An open descriptor with one owner, which closes it: what recv_fds gives.
/// `release()` hands it on (e.g. to socket::from_fd), leaving this empty.
class unique_fd {
  public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }

    /// The descriptor, or -1 when empty.
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// The descriptor, no longer owned here.
    int release() noexcept { return std::exchange(fd_, -1); }
    /// Closes the descriptor held, if any, and holds `fd` instead.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) detail::sys::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

/// What `co_await recv_fds(sock, bufsize, maxfds)` gives, Python's (data,
/// fds, msg_flags, address): the descriptors owned (closed unless taken).
struct recv_fds_result {
    std::string data;
    std::vector<unique_fd> fds;
    int msg_flags = 0;
    cosock::address address;
};

/// Linux's limit on the descriptors one message carries (SCM_MAX_FD).
inline constexpr std::size_t max_fds_per_message = 253;

namespace detail {

/// `co_await recv_fds(...)` → recv_fds_result: a recvmsg whose SCM_RIGHTS
/// descriptors are handed over owned.
class recv_fds_awaiter : public recvmsg_awaiter {
  public:
    explicit recv_fds_awaiter(const args& a) : recvmsg_awaiter(a, ops::recv_fds) {}
    recv_fds_result await_resume() {
        recv_fds_result r;
        data_.resize(received());
        std::size_t count = 0;
        each_passed_fd(msg_, [&](int) { ++count; });
        r.fds.reserve(count);
        each_passed_fd(msg_, [&](int fd) { r.fds.emplace_back(fd); });
        r.data = std::move(data_);
        r.msg_flags = msg_flags();
        r.address = peer_;
        return r;
    }
};

/// What unix.hpp's functions need of a socket beyond its public methods.
struct socket_access {
    template <std::integral N, std::integral M>
    static recvmsg_awaiter::args recvmsg_args(const socket& s, const char* what, N bufsize, M ancbufsize, int flags) {
        return {s.receive_args(what, ancbufsize, flags), socket::byte_count(what, "bufsize", bufsize)};
    }
    template <std::integral M>
    static std::size_t count(const char* what, const char* name, M n) {
        return socket::byte_count(what, name, n);
    }
};

} // namespace detail

/// What recv_fds returns (see operation.hpp).
using recv_fds_operation = operation<detail::recv_fds_awaiter>;

/// `co_await send_fds(sock, buffers, fds, flags, address)` → the bytes sent:
/// Python's send_fds, a sendmsg carrying `fds` in one SCM_RIGHTS message.
/// The receiver gets new descriptors for the same open files; the caller's
/// stay open. An empty `fds` sends no control message. Throws
/// std::invalid_argument for more than max_fds_per_message descriptors, a
/// descriptor that is not open, or descriptors with no byte to ride on over a
/// stream socket (where the kernel would drop them).
template <buffer_sequence Buffers>
sendmsg_operation send_fds(socket& sock, Buffers&& buffers, std::span<const int> fds, int flags = 0,
                           const std::optional<address>& to = std::nullopt) {
    if (fds.size() > max_fds_per_message)
        throw std::invalid_argument("send_fds: " + std::to_string(fds.size()) + " descriptors, more than one message "
                                    "carries (" + std::to_string(max_fds_per_message) + ")");
    for (int fd : fds)
        if (fd < 0 || ::fcntl(fd, F_GETFD) < 0)
            throw std::invalid_argument("send_fds: descriptor " + std::to_string(fd) + " is not open");
    std::vector<ancillary> items;
    if (!fds.empty()) {
        std::size_t bytes = 0;
        for (auto&& b : buffers) bytes += std::ranges::size(b);
        if (bytes == 0 && sock.type() == sock_stream)
            throw std::invalid_argument("send_fds: descriptors need at least one byte of data on a stream socket");
        items.push_back({SOL_SOCKET, SCM_RIGHTS,
                         std::string(reinterpret_cast<const char*>(fds.data()), fds.size() * sizeof(int))});
    }
    return sock.sendmsg(std::forward<Buffers>(buffers), items, flags, to);
}

/// `co_await recv_fds(sock, bufsize, maxfds, flags)` → recv_fds_result{data,
/// fds, msg_flags, address}: Python's recv_fds. Up to `maxfds` descriptors
/// arrive, close-on-exec and owned by the result; the kernel closes any
/// beyond them and says msg_ctrunc. Negative sizes are an std::invalid_argument.
template <std::integral N, std::integral M>
recv_fds_operation recv_fds(socket& sock, N bufsize, M maxfds, int flags = 0) {
    std::size_t n = detail::socket_access::count("recv_fds", "maxfds", maxfds);
    if (n > detail::sys::max_io / sizeof(int))
        throw std::invalid_argument("recv_fds: maxfds " + std::to_string(n) + " is too large");
    return recv_fds_operation(
        detail::socket_access::recvmsg_args(sock, "recv_fds", bufsize, n ? cmsg_len(n * sizeof(int)) : 0, flags));
}

#if defined(__linux__)
/// Who is at the other end of a Unix socket (SO_PEERCRED): the process that
/// connected or made the pair, and its user and group then.
struct credentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

/// The peer's credentials of a connected Unix socket; std::system_error for
/// a closed socket, or ENOTCONN for one with no Unix peer.
inline credentials peer_credentials(const socket& sock) {
    ucred c{};
    socklen_t len = sizeof c;
    detail::check(detail::sys::getsockopt(sock.fileno(), SOL_SOCKET, SO_PEERCRED, &c, &len), "peer_credentials");
    if (c.pid == 0 && c.uid == uid_t(-1)) throw_error(-ENOTCONN, "peer_credentials: no Unix peer");
    return {c.pid, c.uid, c.gid};
}
#endif

} // namespace cosock
