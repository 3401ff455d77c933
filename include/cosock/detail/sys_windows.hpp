// The winsock side of the system-call seam (see sys.hpp): the same functions
// as sys_posix.hpp over the same `int` descriptors and -errno results.
//
// A SOCKET is kept in an int: Windows gives kernel handles 32 significant
// bits (so 64-bit and 32-bit processes can share them), and INVALID_SOCKET
// becomes -1. WSAGetLastError() codes become errno values here (errno_of),
// so EAGAIN checks, std::errc comparisons and timeout_error work unchanged.
// Winsock needs WSAStartup before its first call: a counted reference
// (winsock_user) is taken by every function here that makes a socket, and
// released when the process ends.
//
// Elsewhere this file is empty: sys.hpp includes it only on Windows.
#pragma once

#if defined(_WIN32)

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <cosock/detail/os_category.hpp>
#include <cosock/detail/platform.hpp>

namespace cosock::detail::sys {

/// The errno value for a winsock error code (WSAGetLastError()); a code
/// with no errno counterpart is kept as it is (they are all above 10000).
inline int errno_of(int wsa) noexcept {
    switch (wsa) {
    case WSAEINTR: return EINTR;
    case WSAEBADF: return EBADF;
    case WSAEACCES: return EACCES;
    case WSAEFAULT: return EFAULT;
    case WSAEINVAL: return EINVAL;
    case WSAEMFILE: return EMFILE;
    case WSAEWOULDBLOCK: return EAGAIN;
    case WSAEINPROGRESS: return EINPROGRESS;
    case WSAEALREADY: return EALREADY;
    case WSAENOTSOCK: return ENOTSOCK;
    case WSAEDESTADDRREQ: return EDESTADDRREQ;
    case WSAEMSGSIZE: return EMSGSIZE;
    case WSAEPROTOTYPE: return EPROTOTYPE;
    case WSAENOPROTOOPT: return ENOPROTOOPT;
    case WSAEPROTONOSUPPORT: return EPROTONOSUPPORT;
    case WSAESOCKTNOSUPPORT: return EPROTONOSUPPORT;
    case WSAEOPNOTSUPP: return EOPNOTSUPP;
    case WSAEPFNOSUPPORT: return EAFNOSUPPORT;
    case WSAEAFNOSUPPORT: return EAFNOSUPPORT;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
    case WSAENETDOWN: return ENETDOWN;
    case WSAENETUNREACH: return ENETUNREACH;
    case WSAENETRESET: return ENETRESET;
    case WSAECONNABORTED: return ECONNABORTED;
    case WSAECONNRESET: return ECONNRESET;
    case WSAENOBUFS: return ENOBUFS;
    case WSAEISCONN: return EISCONN;
    case WSAENOTCONN: return ENOTCONN;
    case WSAESHUTDOWN: return EPIPE; // a send after shutdown(SHUT_WR), as Linux says it
    case WSAETIMEDOUT: return ETIMEDOUT;
    case WSAECONNREFUSED: return ECONNREFUSED;
    case WSAEHOSTDOWN: return EHOSTUNREACH;
    case WSAEHOSTUNREACH: return EHOSTUNREACH;
    case WSA_NOT_ENOUGH_MEMORY: return ENOMEM;
    case WSA_OPERATION_ABORTED: return ECANCELED;
    default: return wsa;
    }
}
/// -errno for the last winsock error.
inline int failed() noexcept { return -errno_of(::WSAGetLastError()); }

inline SOCKET handle(int fd) noexcept { return SOCKET(std::intptr_t(fd)); }
inline int descriptor(SOCKET s) noexcept { return s == INVALID_SOCKET ? -1 : int(std::intptr_t(s)); }

/// WSAStartup once for the process, before the first socket or name lookup;
/// WSACleanup when the process ends. 0, or -errno.
inline int start_sockets() noexcept {
    struct session {
        int error = 0;
        session() noexcept {
            WSADATA data;
            error = ::WSAStartup(MAKEWORD(2, 2), &data);
        }
        ~session() {
            if (error == 0) ::WSACleanup();
        }
    };
    static const session s;
    return s.error ? -errno_of(s.error) : 0;
}

/// Where `fd` sits in a per-descriptor table, and back: a SOCKET is a
/// kernel handle, a multiple of 4 from the process's handle table, which
/// reuses the lowest free entries as POSIX descriptors do.
inline std::size_t slot(int fd) noexcept { return std::size_t(unsigned(fd)) >> 2; }
inline int fd_at(std::size_t slot) noexcept { return int(slot << 2); }

// Winsock takes an int length; cap every I/O so its result fits.
inline constexpr std::size_t max_io = 0x7ffff000;
inline std::size_t cap(std::size_t n) noexcept { return n < max_io ? n : max_io; }

inline int set_nonblocking(int fd) noexcept {
    u_long on = 1;
    return ::ioctlsocket(handle(fd), static_cast<long>(FIONBIO), &on) == 0 ? 0 : failed();
}
/// Not inherited by child processes (close-on-exec's counterpart).
inline int set_cloexec(int fd) noexcept {
    return ::SetHandleInformation(reinterpret_cast<HANDLE>(handle(fd)), HANDLE_FLAG_INHERIT, 0) ? 0 : -EBADF;
}
// A new socket is made non-blocking and uninheritable before anyone sees it.
inline int adopt_new(SOCKET s) noexcept {
    if (s == INVALID_SOCKET) return failed();
    int fd = descriptor(s);
    if (int r = set_nonblocking(fd); r < 0) {
        ::closesocket(s);
        return r;
    }
    return fd;
}
inline int socket(int family, int type, int proto) noexcept {
    if (int r = start_sockets(); r < 0) return r;
    return adopt_new(::WSASocketW(family, type, proto, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT));
}
/// A second handle for the same socket (WSADuplicateSocket into this very
/// process), non-blocking and uninheritable, or -errno.
inline int dup(int fd) noexcept {
    WSAPROTOCOL_INFOW info{};
    if (::WSADuplicateSocketW(handle(fd), ::GetCurrentProcessId(), &info) != 0) return failed();
    return adopt_new(::WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                                  WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT));
}
/// Whether `fd` is an open socket of this process.
inline bool is_open(int fd) noexcept {
    int type = 0;
    int len = sizeof type;
    return ::getsockopt(handle(fd), SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &len) == 0;
}
inline int bind(int fd, const sockaddr* sa, socklen_t len) noexcept {
    return ::bind(handle(fd), sa, len) == 0 ? 0 : failed();
}
inline int listen(int fd, int backlog) noexcept { return ::listen(handle(fd), backlog) == 0 ? 0 : failed(); }
inline int accept(int fd, sockaddr* sa, socklen_t* len) noexcept {
    return adopt_new(::accept(handle(fd), sa, len));
}
// Winsock says WSAEWOULDBLOCK where POSIX says EINPROGRESS.
inline int connect(int fd, const sockaddr* sa, socklen_t len) noexcept {
    if (::connect(handle(fd), sa, len) == 0) return 0;
    int r = failed();
    return r == -EAGAIN ? -EINPROGRESS : r;
}
// Reads end as on POSIX where Winsock fails instead: a datagram longer than
// the buffer fills it (WSAEMSGSIZE, the rest dropped as recv(2) drops it),
// and after our own shutdown(SHUT_RD) a read is the end of the stream
// (WSAESHUTDOWN).
inline int recv_failed(std::size_t len) noexcept {
    switch (::WSAGetLastError()) {
    case WSAEMSGSIZE: return int(cap(len));
    case WSAESHUTDOWN: return 0;
    default: return failed();
    }
}
inline int recv(int fd, void* buf, std::size_t len, int flags) noexcept {
    int r = ::recv(handle(fd), static_cast<char*>(buf), int(cap(len)), flags);
    return r >= 0 ? r : recv_failed(len);
}
inline int send(int fd, const void* buf, std::size_t len, int flags) noexcept {
    int r = ::send(handle(fd), static_cast<const char*>(buf), int(cap(len)), flags);
    return r >= 0 ? r : failed();
}
template <class Op>
inline int recv_of(const Op& op) noexcept {
    return recv(op.fd, op.buf, op.len, op.flags);
}
template <class Op>
inline int send_rest_of(const Op& op) noexcept {
    return send(op.fd, static_cast<const char*>(op.buf) + op.done, op.len - op.done, op.flags);
}
// recvmsg and sendmsg (and recvfrom and sendto, which run as they) over
// WSARecvFrom and WSASendTo, which take the
// buffers of a msghdr (as WSABUFs, up to max_buffers) and the peer's address
// but no control data: cosock refuses ancillary data on Windows before a call
// gets here. A datagram longer than the buffers fills them and is reported as
// MSG_TRUNC, as recvmsg does (see recv_failed).
inline constexpr std::size_t max_buffers = 64;
inline int to_wsabufs(const msghdr* msg, WSABUF* out, std::size_t& total) noexcept {
    if (msg->msg_iovlen > max_buffers) return -EMSGSIZE;
    total = 0;
    for (std::size_t i = 0; i < msg->msg_iovlen; ++i) {
        std::size_t len = cap(msg->msg_iov[i].iov_len);
        if (len > max_io - total) len = max_io - total;
        out[i].buf = static_cast<char*>(msg->msg_iov[i].iov_base);
        out[i].len = ULONG(len);
        total += len;
    }
    return 0;
}
inline int recvmsg(int fd, msghdr* msg, int flags) noexcept {
    WSABUF bufs[max_buffers];
    std::size_t total = 0;
    if (int r = to_wsabufs(msg, bufs, total); r < 0) return r;
    msg->msg_flags = 0;
    int namelen = int(msg->msg_namelen);
    // A stream socket leaves the address alone: an AF_UNSPEC one says "none".
    if (msg->msg_name && namelen >= int(sizeof(sockaddr))) static_cast<sockaddr*>(msg->msg_name)->sa_family = AF_UNSPEC;
    DWORD got = 0, how = DWORD(flags);
    int r = ::WSARecvFrom(handle(fd), bufs, DWORD(msg->msg_iovlen), &got, &how,
                          static_cast<sockaddr*>(msg->msg_name), msg->msg_name ? &namelen : nullptr, nullptr,
                          nullptr) == 0
                ? int(got)
                : -1;
    if (r < 0) {
        if (::WSAGetLastError() == WSAEMSGSIZE)
            msg->msg_flags |= MSG_TRUNC; // the sender is filled in
        else
            namelen = 0; // nothing came from anyone
        r = recv_failed(total);
    }
    if (r >= 0)
        msg->msg_namelen = msg->msg_name && static_cast<sockaddr*>(msg->msg_name)->sa_family == AF_UNSPEC
                               ? 0
                               : socklen_t(namelen);
    return r;
}
inline int sendmsg(int fd, const msghdr* msg, int flags) noexcept {
    WSABUF bufs[max_buffers];
    std::size_t total = 0;
    if (int r = to_wsabufs(msg, bufs, total); r < 0) return r;
    DWORD sent = 0;
    if (::WSASendTo(handle(fd), bufs, DWORD(msg->msg_iovlen), &sent, DWORD(flags),
                    static_cast<const sockaddr*>(msg->msg_name), int(msg->msg_namelen), nullptr, nullptr) != 0)
        return failed();
    return int(sent);
}
inline int shutdown(int fd, int how) noexcept { return ::shutdown(handle(fd), how) == 0 ? 0 : failed(); }
inline int close(int fd) noexcept { return ::closesocket(handle(fd)) == 0 ? 0 : failed(); }
inline int getsockopt(int fd, int level, int name, void* val, socklen_t* len) noexcept {
    return ::getsockopt(handle(fd), level, name, static_cast<char*>(val), len) == 0 ? 0 : failed();
}
inline int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
    return ::setsockopt(handle(fd), level, name, static_cast<const char*>(val), len) == 0 ? 0 : failed();
}
inline int getsockname(int fd, sockaddr* sa, socklen_t* len) noexcept {
    return ::getsockname(handle(fd), sa, len) == 0 ? 0 : failed();
}
inline int getpeername(int fd, sockaddr* sa, socklen_t* len) noexcept {
    return ::getpeername(handle(fd), sa, len) == 0 ? 0 : failed();
}
/// The socket's pending error (SO_ERROR, a winsock code there) as -errno, or 0.
inline int pending_error(int fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(handle(fd), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&err), &len) != 0) return failed();
    return err ? -errno_of(err) : 0;
}
/// The family, type and protocol of an open socket (SO_PROTOCOL_INFOW).
inline int socket_kind(int fd, int& family, int& type, int& proto) noexcept {
    WSAPROTOCOL_INFOW info{};
    int len = sizeof info;
    if (::getsockopt(handle(fd), SOL_SOCKET, SO_PROTOCOL_INFOW, reinterpret_cast<char*>(&info), &len) != 0)
        return failed();
    family = info.iAddressFamily;
    type = info.iSocketType;
    proto = info.iProtocol;
    return 0;
}

/// A connected pair of stream sockets over loopback TCP (winsock has no
/// socketpair): a listener on port 0 accepts one connection, and the pair
/// is kept only when the accepted peer is the socket that connected.
inline int socketpair(int family, int type, int proto, int fds[2]) noexcept {
    if (family != AF_INET && family != AF_INET6) return -EAFNOSUPPORT;
    if (type != SOCK_STREAM) return -EOPNOTSUPP;
    if (int r = start_sockets(); r < 0) return r;
    sockaddr_storage at{};
    int atlen;
    if (family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&at);
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        atlen = sizeof(sockaddr_in);
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&at);
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        atlen = sizeof(sockaddr_in6);
    }
    SOCKET listener = ::WSASocketW(family, type, proto, nullptr, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    if (listener == INVALID_SOCKET) return failed();
    SOCKET a = INVALID_SOCKET, b = INVALID_SOCKET;
    int r = 0;
    auto fail = [&] {
        r = failed();
        return false;
    };
    auto make = [&] {
        int exclusive = 1;
        ::setsockopt(listener, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, reinterpret_cast<char*>(&exclusive), sizeof exclusive);
        if (::bind(listener, reinterpret_cast<sockaddr*>(&at), atlen) != 0) return fail();
        if (::getsockname(listener, reinterpret_cast<sockaddr*>(&at), &atlen) != 0) return fail();
        if (::listen(listener, 1) != 0) return fail();
        a = ::WSASocketW(family, type, proto, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
        if (a == INVALID_SOCKET) return fail();
        if (::connect(a, reinterpret_cast<sockaddr*>(&at), atlen) != 0) return fail();
        sockaddr_storage mine{}, theirs{};
        int minelen = sizeof mine, theirslen = sizeof theirs;
        if (::getsockname(a, reinterpret_cast<sockaddr*>(&mine), &minelen) != 0) return fail();
        b = ::accept(listener, reinterpret_cast<sockaddr*>(&theirs), &theirslen);
        if (b == INVALID_SOCKET) return fail();
        if (minelen != theirslen || std::memcmp(&mine, &theirs, std::size_t(minelen)) != 0) {
            r = -ECONNABORTED; // another process connected first
            return false;
        }
        return true;
    };
    bool ok = make();
    ::closesocket(listener);
    if (ok) {
        fds[0] = adopt_new(a);
        a = INVALID_SOCKET;
        fds[1] = adopt_new(b);
        b = INVALID_SOCKET;
        if (fds[0] < 0 || fds[1] < 0) {
            r = fds[0] < 0 ? fds[0] : fds[1];
            if (fds[0] >= 0) ::closesocket(handle(fds[0]));
            if (fds[1] >= 0) ::closesocket(handle(fds[1]));
            ok = false;
        }
    }
    if (a != INVALID_SOCKET) ::closesocket(a);
    if (b != INVALID_SOCKET) ::closesocket(b);
    return ok ? 0 : r;
}

/// Pins the calling thread to the i-th CPU of the process's affinity mask
/// (modulo their number). 0, or -errno.
inline int pin_this_thread(std::size_t i) noexcept {
    DWORD_PTR process = 0, system = 0;
    if (!::GetProcessAffinityMask(::GetCurrentProcess(), &process, &system) || process == 0) return 0;
    std::size_t n = 0;
    for (DWORD_PTR m = process; m; m &= m - 1) ++n;
    std::size_t want = i % n;
    for (unsigned c = 0; c < sizeof(DWORD_PTR) * 8; ++c)
        if ((process >> c) & 1) {
            if (want-- == 0) return ::SetThreadAffinityMask(::GetCurrentThread(), DWORD_PTR(1) << c) ? 0 : -EINVAL;
        }
    return 0;
}

/// Interface names would need iphlpapi: scopes are numbers on Windows.
/// This machine's host name, NUL-terminated in `name`.
inline int gethostname(char* name, std::size_t len) noexcept {
    if (int r = start_sockets(); r < 0) return r;
    int r = ::gethostname(name, int(cap(len)));
    name[len - 1] = '\0';
    return r == 0 ? 0 : failed();
}
/// getaddrinfo's text for an EAI_* code (a WSA code here), as glibc words
/// it: mingw's gai_strerror writes a buffer shared by every thread, and keeps
/// the previous text for a code Windows has no message for.
inline std::string gai_message(int eai) {
    switch (eai) {
    case WSATRY_AGAIN: return "Temporary failure in name resolution";
    case WSAEINVAL: return "Bad value for ai_flags";
    case WSANO_RECOVERY: return "Non-recoverable failure in name resolution";
    case WSAEAFNOSUPPORT: return "ai_family not supported";
    case WSA_NOT_ENOUGH_MEMORY: return "Memory allocation failure";
    case WSAHOST_NOT_FOUND: return "Name or service not known";
    case WSATYPE_NOT_FOUND: return "Servname not supported for ai_socktype";
    case WSAESOCKTNOSUPPORT: return "ai_socktype not supported";
    case WSANO_DATA: return "No address associated with hostname";
    default: return "getaddrinfo error " + std::to_string(eai);
    }
}
inline bool interface_name(unsigned, std::string&) { return false; }
inline unsigned interface_index(const char*) noexcept { return 0; }

/// Winsock reports no shut read side; a spurious wake-up it is.
inline bool read_side_shut(int) noexcept { return false; }

/// Which open socket a descriptor is. Winsock gives no identity beyond the
/// handle, so only a closed socket is told from an open one.
struct file_identity {
    bool operator==(const file_identity&) const = default;
};
inline bool identify(int fd, file_identity&) noexcept { return is_open(fd); }

/// How other threads wake a loop: `fd` (the read end of a loopback pair)
/// becomes readable after wake() and stays so until drain().
struct waker {
    int fd = -1;
    int post_fd = -1;
};
inline int open_waker(waker& w) noexcept {
    int fds[2];
    if (int r = socketpair(AF_INET, SOCK_STREAM, 0, fds); r < 0) return r;
    w.fd = fds[0];
    w.post_fd = fds[1];
    return 0;
}
inline void close_waker(waker& w) noexcept {
    if (w.fd >= 0) ::closesocket(handle(w.fd));
    if (w.post_fd >= 0) ::closesocket(handle(w.post_fd));
    w.fd = w.post_fd = -1;
}
/// One byte; a full pipe (the loop has not drained yet) is readable anyway.
inline void wake(const waker& w) noexcept {
    char one = 1;
    (void)::send(handle(w.post_fd), &one, 1, 0);
}
inline void drain(const waker& w) noexcept {
    char buf[256];
    while (::recv(handle(w.fd), buf, sizeof buf, 0) == int(sizeof buf)) {
    }
}

inline pollfd make_pollfd(int fd, short events) noexcept {
    pollfd p{};
    p.fd = handle(fd); // -1 stays INVALID_SOCKET, which WSAPoll skips
    p.events = events;
    return p;
}
/// What WSAPoll calls urgent (out-of-band) data: it refuses POLLPRI.
inline constexpr short poll_urgent = POLLRDBAND;
/// The WSAPoll results that wake every waiter (a reset is POLLERR), and
/// those that wake readers only: WSAPoll reports the peer's FIN alone as
/// POLLHUP, where poll(2) says POLLHUP once both directions are over. Waking
/// a writer for it would spin: its buffer is still full, and send() says
/// WSAEWOULDBLOCK for as long as the peer does not read.
inline constexpr short poll_failed = POLLERR | POLLNVAL;
inline constexpr short poll_read_ended = POLLHUP;

// WSAPoll fails as a whole when one of its sockets was closed (WSAENOTSOCK),
// where poll(2) marks that one POLLNVAL: do the same, and report the others
// as they are now, one by one (a rare path), without waiting.
inline int poll_marking_closed(WSAPOLLFD* fds, std::size_t n) noexcept {
    int ready = 0;
    for (std::size_t i = 0; i < n; ++i) {
        fds[i].revents = 0;
        if (fds[i].fd == INVALID_SOCKET) continue;
        if (!is_open(descriptor(fds[i].fd)))
            fds[i].revents = POLLNVAL;
        else if (::WSAPoll(&fds[i], 1, 0) < 0)
            fds[i].revents = POLLNVAL; // closed since
        ready += fds[i].revents != 0;
    }
    return ready;
}

// WSAPoll reports a peer's FIN (POLLHUP) whatever was asked, at once and for
// as long as the socket stays open. A set where a writer waits for room on
// such a socket, and nobody reads it, would never let WSAPoll block: when
// WSAPoll has nothing else to say, the wait is made with select() instead,
// whose write set means room to write and nothing else.
inline bool only_read_ends_unasked(const WSAPOLLFD* fds, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i)
        if ((fds[i].revents & ~POLLHUP) != 0 || (fds[i].revents && (fds[i].events & POLLRDNORM))) return false;
    return true;
}
inline int poll_by_select(WSAPOLLFD* fds, std::size_t n, int timeout_ms) noexcept {
    fd_set r, w, x; // Winsock's sets: arrays of up to FD_SETSIZE sockets
    r.fd_count = w.fd_count = x.fd_count = 0;
    for (std::size_t i = 0; i < n; ++i) {
        fds[i].revents = 0;
        if (fds[i].fd == INVALID_SOCKET) continue;
        if (r.fd_count == FD_SETSIZE || w.fd_count == FD_SETSIZE || x.fd_count == FD_SETSIZE) {
            // Past FD_SETSIZE sockets: look again in a moment (the caller
            // loops), rather than spin.
            ::Sleep(timeout_ms < 0 || timeout_ms > 10 ? 10 : DWORD(timeout_ms));
            return 0;
        }
        if (fds[i].events & POLLRDNORM) r.fd_array[r.fd_count++] = fds[i].fd;
        if (fds[i].events & POLLWRNORM) w.fd_array[w.fd_count++] = fds[i].fd;
        // The exception set: urgent data. (A failed connect, which select()
        // reports there too, WSAPoll reports as POLLERR: not asked here.)
        if (fds[i].events & POLLRDBAND) x.fd_array[x.fd_count++] = fds[i].fd;
    }
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int res = ::select(0, &r, &w, &x, timeout_ms < 0 ? nullptr : &tv);
    if (res < 0 && ::WSAGetLastError() == WSAENOTSOCK) return poll_marking_closed(fds, n);
    if (res <= 0) return res < 0 ? failed() : 0;
    // The sets came back holding only the ready sockets, few next to n.
    auto in = [](const fd_set& set, SOCKET sock) {
        for (u_int k = 0; k < set.fd_count; ++k)
            if (set.fd_array[k] == sock) return true;
        return false;
    };
    int ready = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (fds[i].fd == INVALID_SOCKET) continue;
        short got = 0;
        if (r.fd_count && in(r, fds[i].fd)) got |= POLLRDNORM;
        if (w.fd_count && in(w, fds[i].fd)) got |= POLLWRNORM;
        if (x.fd_count && in(x, fds[i].fd)) got |= POLLRDBAND;
        fds[i].revents = got;
        ready += got != 0;
    }
    return ready;
}

// The waits, retried by the backends themselves (which know the time left).
inline int poll(WSAPOLLFD* fds, std::size_t n, int timeout_ms) noexcept {
    // WSAPoll refuses a set with no socket in it (an empty one, or one of
    // INVALID_SOCKETs only, which poll() would ignore): a plain sleep it is.
    bool any = false;
    for (std::size_t i = 0; i < n; ++i) {
        fds[i].revents = 0;
        any = any || fds[i].fd != INVALID_SOCKET;
    }
    if (!any) {
        ::Sleep(timeout_ms < 0 ? INFINITE : DWORD(timeout_ms));
        return 0;
    }
    int r = ::WSAPoll(fds, ULONG(n), timeout_ms);
    if (r < 0 && ::WSAGetLastError() == WSAENOTSOCK) return poll_marking_closed(fds, n);
    if (r < 0) return failed();
    return r > 0 && only_read_ends_unasked(fds, n) ? poll_by_select(fds, n, timeout_ms) : r;
}
inline int select(int, fd_set* r, fd_set* w, fd_set* x, timeval* tv) noexcept {
    // Winsock refuses a select on three empty sets; a plain sleep it is.
    if ((!r || r->fd_count == 0) && (!w || w->fd_count == 0) && (!x || x->fd_count == 0)) {
        ::Sleep(tv ? DWORD(tv->tv_sec * 1000 + tv->tv_usec / 1000) : INFINITE);
        return 0;
    }
    int res = ::select(0, r, w, x, tv);
    return res >= 0 ? res : failed();
}

} // namespace cosock::detail::sys

#endif // _WIN32
