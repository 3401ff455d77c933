// cosock::socket: Python's socket.socket with awaitable I/O.
//
// The descriptor is always non-blocking; an awaitable operation first tries its
// system call and suspends only when the kernel says EAGAIN, then the backend
// resumes it once the call has succeeded or failed. The operation record lives
// in the awaiter, inside the coroutine frame: no I/O call allocates.
//
// Methods not marked noexcept throw std::system_error naming the operation and
// carrying the errno. No operation raises SIGPIPE. A socket is used from the
// thread of its scheduler only.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <cosock/detail/platform.hpp>

#include <cosock/address.hpp>
#include <cosock/buffer.hpp>
#include <cosock/constants.hpp>
#include <cosock/detail/io_awaiter.hpp>
#include <cosock/detail/ops/accept.hpp>
#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/connect.hpp>
#include <cosock/detail/ops/recv.hpp>
#include <cosock/detail/ops/recvfrom.hpp>
#include <cosock/detail/ops/recvmsg.hpp>
#include <cosock/detail/ops/send.hpp>
#include <cosock/detail/ops/sendall.hpp>
#include <cosock/detail/ops/sendfile.hpp>
#include <cosock/detail/ops/sendmsg.hpp>
#include <cosock/detail/ops/sendto.hpp>
#include <cosock/error.hpp>
#include <cosock/file_object.hpp>
#include <cosock/message.hpp>
#include <cosock/operation.hpp>
#include <cosock/scheduler.hpp>

namespace cosock {

class socket;
class ssl_socket;
namespace detail {
class accept_awaiter;
struct socket_access;
} // namespace detail

/// The operations a socket's methods return (see operation.hpp).
using recv_operation = operation<detail::recv_awaiter>;
using recv_bytes_operation = operation<detail::recv_bytes_awaiter>;
using recvmsg_operation = operation<detail::recvmsg_awaiter>;
using recvmsg_into_operation = operation<detail::recvmsg_into_awaiter>;
using sendmsg_operation = operation<detail::sendmsg_awaiter>;
using send_operation = operation<detail::send_awaiter>;
using sendall_operation = operation<detail::sendall_awaiter>;
using recvfrom_operation = operation<detail::recvfrom_awaiter>;
using sendto_operation = operation<detail::sendto_awaiter>;
using connect_operation = operation<detail::connect_awaiter>;
using connect_ex_operation = operation<detail::connect_ex_awaiter>;
using accept_operation = operation<detail::accept_awaiter>;
#if !COSOCK_WINDOWS
/// What sendfile returns (POSIX).
using sendfile_operation = operation<detail::sendfile_awaiter>;
#endif

/// What `co_await sock.accept()` gives: like Python's `conn, address = s.accept()`.
struct accept_result;

/// A socket bound to a scheduler. Move-only; the destructor closes it.
class socket {
  public:
    /// A closed socket (fileno() == -1), e.g. to move another into.
    socket() noexcept = default;

    /// Creates a socket like Python's socket.socket(family, type, proto).
    /// Throws std::system_error naming the arguments if the kernel refuses.
    explicit socket(scheduler& s, int family = af_inet, int type = sock_stream, int proto = 0)
        : sched_(detail::loop_of(s).ref()), family_(family), type_(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
        int fd = detail::sys::socket(family, type_, proto);
        if (fd < 0)
            throw_error(fd, "socket(family=" + std::to_string(family) + ", type=" + std::to_string(type) +
                                ", proto=" + std::to_string(proto) + ")");
        fd_ = fd;
        proto_ = read_protocol(proto);
    }

    /// Adopts an open socket descriptor, reading its family, type and protocol
    /// from the kernel, and makes it non-blocking. On failure the descriptor
    /// is left open and untouched (apart from O_NONBLOCK).
    static socket from_fd(scheduler& s, int fd) {
        socket sock;
        int family = 0, type = 0, proto = 0;
        detail::check(detail::sys::socket_kind(fd, family, type, proto), ("from_fd(" + std::to_string(fd) + ")").c_str());
        detail::check(detail::sys::set_nonblocking(fd), "from_fd: making it non-blocking");
        sock.sched_ = detail::loop_of(s).ref();
        sock.fd_ = fd;
        sock.family_ = family;
        sock.type_ = type;
        sock.proto_ = proto;
        return sock;
    }

    socket(socket&& other) noexcept
        : sched_(std::move(other.sched_)), fd_(std::exchange(other.fd_, -1)), family_(other.family_),
          type_(other.type_), proto_(other.proto_), timeout_(other.timeout_), shared_(std::move(other.shared_)) {}
    socket& operator=(socket&& other) noexcept {
        if (this != &other) {
            close();
            sched_ = std::move(other.sched_);
            fd_ = std::exchange(other.fd_, -1);
            family_ = other.family_;
            type_ = other.type_;
            proto_ = other.proto_;
            timeout_ = other.timeout_;
            shared_ = std::move(other.shared_);
        }
        return *this;
    }
    ~socket() { close(); }

    /// The descriptor, or -1 once closed.
    int fileno() const noexcept { return fd_; }
    int family() const noexcept { return family_; }
    int type() const noexcept { return type_; }
    int proto() const noexcept { return proto_; }
    /// The scheduler, or nullptr once it is destroyed (or for a default-constructed socket).
    scheduler* get_scheduler() const noexcept { return sched_.get(); }

    /// Sets the timeout of every later operation, as Python's settimeout:
    /// std::nullopt waits for ever; zero never waits (an operation that would
    /// have to fails with EAGAIN, Python's BlockingIOError); a positive limit
    /// bounds each operation as a whole (all of a sendall, retries included)
    /// and raises cosock::timeout_error when it passes. A negative value is an
    /// std::invalid_argument.
    void settimeout(std::optional<std::chrono::nanoseconds> timeout) {
        if (timeout && timeout->count() < 0)
            throw std::invalid_argument("settimeout: negative timeout " + std::to_string(timeout->count()) + "ns");
        timeout_ = timeout ? *timeout : detail::no_timeout;
        if (shared_) shared_.set_timeout(timeout_);
    }
    /// Seconds as in Python (`settimeout(2.5)`); NaN or negative → invalid_argument.
    /// A positive value rounds up to the clock's resolution (1 ns), as Python
    /// rounds it, so it stays a timeout and never becomes non-blocking.
    void settimeout(double seconds) {
        if (!(seconds >= 0) || seconds > 1e9)
            throw std::invalid_argument("settimeout: timeout out of range: " + std::to_string(seconds));
        settimeout(std::chrono::ceil<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds)));
    }
    /// The timeout: std::nullopt when operations wait for ever.
    std::optional<std::chrono::nanoseconds> gettimeout() const noexcept {
        if (timeout_ < std::chrono::nanoseconds::zero()) return std::nullopt;
        return timeout_;
    }
    /// Python's setblocking: true is settimeout(std::nullopt), false is
    /// settimeout(0s) (an operation that would wait fails with EAGAIN).
    void setblocking(bool blocking) {
        settimeout(blocking ? std::nullopt : std::optional<std::chrono::nanoseconds>(std::chrono::nanoseconds::zero()));
    }
    /// False only when the timeout is zero, as Python's getblocking.
    bool getblocking() const noexcept { return timeout_ != std::chrono::nanoseconds::zero(); }

    /// Python's dup: a new socket on the same scheduler over a duplicate of
    /// the descriptor (close-on-exec), with the default timeout (none).
    socket dup() const {
        int fd = detail::sys::dup(open_fd("dup"));
        detail::check(fd, "dup");
        try {
            return from_fd(open_scheduler("dup"), fd);
        } catch (...) {
            detail::sys::close(fd);
            throw;
        }
    }

    /// Closes the socket; idempotent. Operations still waiting on it resume
    /// with a std::system_error carrying EBADF. While file objects made from
    /// it are open, the descriptor stays open for them and nothing is
    /// cancelled. A socket that outlives its scheduler just closes its
    /// descriptor.
    void close() noexcept {
        if (fd_ < 0) return;
        if (shared_) { // the last owner closes it
            fd_ = -1;
            shared_.reset();
            return;
        }
        if (scheduler* s = sched_.get()) release(*s, fd_, true);
        detail::sys::close(std::exchange(fd_, -1));
    }

    /// Gives up the descriptor without closing it; the socket becomes closed.
    /// Operations still waiting on it resume with EBADF; file
    /// objects made from it can no longer use it (EBADF), as in Python.
    int detach() noexcept {
        if (shared_) {
            shared_.disown();
            shared_.reset();
        }
        scheduler* s = sched_.get();
        if (fd_ >= 0 && s) release(*s, fd_, false);
        return std::exchange(fd_, -1);
    }

    /// Hands the socket to another scheduler, e.g. a connection accepted on
    /// one thread and served on another (with scheduler::post(task) or
    /// resume_on). Call it on the thread of the socket's current scheduler,
    /// or while that scheduler runs nowhere: the old backend forgets the
    /// descriptor (operations still waiting on it resume with EBADF, as after
    /// detach()); the new one takes it up at its first operation. File
    /// objects made from the socket move with it. Throws std::logic_error
    /// when called from another thread while the old scheduler runs, and
    /// std::system_error(EBADF) for a closed socket.
    void move_to(scheduler& other) {
        int fd = open_fd("move_to");
        scheduler* old = sched_.get();
        if (old == &other) return;
        if (old && scheduler::current() != old && old->running())
            throw std::logic_error("move_to: the socket's scheduler is running on another thread; hand the socket "
                                   "over from that thread");
        if (old) release(*old, fd, false);
        sched_ = detail::loop_of(other).ref();
        if (shared_) shared_.rebind(sched_);
    }

    /// Python's makefile(mode, buffering, *, encoding, newline): a buffered
    /// file object reading ("r"), writing ("w") or both ("rw"), in text or, with
    /// "b", binary mode. buffering: -1 the default size, 0 unbuffered (binary
    /// only), 1 line-buffered (text; binary uses the default), else a size in
    /// bytes. See file_object.hpp. The descriptor stays open until the socket
    /// and every file object made from it are closed. Throws
    /// std::invalid_argument naming a bad argument, std::system_error(EBADF) if
    /// the socket is closed.
    file_object makefile(std::string_view mode = "r", int buffering = -1, const file_options& options = {}) {
        detail::file_mode m = detail::parse_file_mode(mode, buffering, options.encoding, options.newline,
                                                      file_object::default_buffer_size);
        return file_object(share_fd("makefile"), m, mode, short_read_drains());
    }

    /// Binds to a local address (never blocks).
    void bind(const address& addr) {
        int r = detail::sys::bind(open_fd("bind"), addr.data(), addr.size());
        if (r < 0) throw_error(r, "bind to " + addr.to_string());
    }

    /// Starts listening. The default backlog is SOMAXCONN (the kernel caps
    /// larger values), bigger than Python's 128, for servers under load.
    void listen(int backlog = SOMAXCONN) { detail::check(detail::sys::listen(open_fd("listen"), backlog), "listen"); }

    /// Shuts down one or both directions: shut_rd, shut_wr or shut_rdwr.
    void shutdown(int how) { detail::check(detail::sys::shutdown(open_fd("shutdown"), how), "shutdown"); }

    /// The local address.
    address getsockname() const { return name_of(detail::sys::getsockname, "getsockname"); }
    /// The peer's address; throws (ENOTCONN) when not connected.
    address getpeername() const { return name_of(detail::sys::getpeername, "getpeername"); }

    /// Sets an integer option, e.g. setsockopt(sol_socket, so_reuseaddr, 1).
    void setsockopt(int level, int name, int value) {
        detail::check(detail::sys::setsockopt(open_fd("setsockopt"), level, name, &value, sizeof value), "setsockopt");
    }
    /// Sets an option from raw bytes (structs such as linger).
    void setsockopt(int level, int name, std::span<const std::byte> value) {
        detail::check(
            detail::sys::setsockopt(open_fd("setsockopt"), level, name, value.data(), socklen_t(value.size())),
            "setsockopt");
    }
    /// Reads an integer option.
    int getsockopt(int level, int name) const {
        int v = 0;
        socklen_t len = sizeof v;
        detail::check(detail::sys::getsockopt(open_fd("getsockopt"), level, name, &v, &len), "getsockopt");
        return v;
    }
    /// Reads an option as raw bytes into `out`; returns the option's length.
    std::size_t getsockopt(int level, int name, std::span<std::byte> out) const {
        socklen_t len = socklen_t(out.size());
        detail::check(detail::sys::getsockopt(open_fd("getsockopt"), level, name, out.data(), &len), "getsockopt");
        return std::size_t(len);
    }

    /// `co_await accept()` → accept_result{conn, address}.
    ///
    /// Out of descriptors it throws std::system_error with EMFILE (this
    /// process) or ENFILE (the system), as Python does, and the connection
    /// stays queued in the kernel. cosock does not retry behind the caller's
    /// back, and accepting again at once would fail again at once: a server
    /// loop that catches it should wait before the next accept (e.g.
    /// `co_await sleep_for(10ms)`) or close a descriptor first.
    accept_operation accept();

    /// `co_await connect(addr)`: completes when connected; throws on refusal.
    connect_operation connect(const address& addr) { return connect_operation({args("connect"), addr}); }
    /// `co_await connect_ex(addr)` → 0 once connected, else the errno connect
    /// would throw (Python's connect_ex; see detail::connect_ex_awaiter).
    connect_ex_operation connect_ex(const address& addr) {
        return connect_ex_operation({args("connect_ex"), addr});
    }

    /// `co_await recv(buf)` → bytes received (at most buf's size); 0 means
    /// the peer closed the connection (stream) or sent an empty datagram.
    template <mutable_buffer B>
    recv_operation recv(B&& buf, int flags = 0) {
        return recv_operation(
            {args("recv", std::ranges::data(buf), std::ranges::size(buf), flags), short_read_drains()});
    }

    /// `co_await recv(n)` → a std::string of at most n bytes, as Python's
    /// `data = s.recv(1024)`; empty when the peer closed the connection. It
    /// allocates the string (n bytes, before the read): the buffer forms
    /// above read into memory the caller keeps. A negative n, or one larger
    /// than a read can return, is an std::invalid_argument.
    template <std::integral N>
    recv_bytes_operation recv(N n, int flags = 0) {
        return recv_bytes_operation(
            {args("recv", nullptr, byte_count("recv", "n", n), flags), short_read_drains()});
    }

    /// `co_await send(buf)` → bytes sent, possibly fewer than buf's size.
    template <const_buffer B>
    send_operation send(B&& buf, int flags = 0) {
        return send_operation(args("send", std::ranges::data(buf), std::ranges::size(buf), flags));
    }

    /// `co_await sendall(buf)` sends every byte, or throws; → bytes sent.
    template <const_buffer B>
    sendall_operation sendall(B&& buf, int flags = 0) {
        return sendall_operation(args("sendall", std::ranges::data(buf), std::ranges::size(buf), flags));
    }

    /// `co_await recvfrom(buf)` → recvfrom_result{size, address}.
    template <mutable_buffer B>
    recvfrom_operation recvfrom(B&& buf, int flags = 0) {
        return recvfrom_operation(args("recvfrom", std::ranges::data(buf), std::ranges::size(buf), flags));
    }

    /// Python's recv_into: recv into the first `nbytes` of `buf` (0: all of
    /// it). More than buf holds is an std::invalid_argument naming both.
    template <mutable_buffer B>
    recv_operation recv_into(B&& buf, std::size_t nbytes = 0, int flags = 0) {
        return recv(std::span(std::ranges::data(buf), limit("recv_into", std::ranges::size(buf), nbytes)), flags);
    }
    /// Python's recvfrom_into, with recv_into's `nbytes`.
    template <mutable_buffer B>
    recvfrom_operation recvfrom_into(B&& buf, std::size_t nbytes = 0, int flags = 0) {
        return recvfrom(std::span(std::ranges::data(buf), limit("recvfrom_into", std::ranges::size(buf), nbytes)),
                        flags);
    }

    /// `co_await sendto(buf, addr)` → bytes sent (a whole datagram or an error).
    template <const_buffer B>
    sendto_operation sendto(B&& buf, const address& addr, int flags = 0) {
        return sendto_operation({args("sendto", std::ranges::data(buf), std::ranges::size(buf), flags), addr});
    }

    /// `co_await sendmsg(buffers, ancdata, flags, address)` → bytes sent:
    /// Python's sendmsg, one call over several buffers (gather) with control
    /// messages (cosock::ancillary) and, for an unconnected socket, a
    /// destination. On a stream it may send fewer bytes than the buffers
    /// hold, as send does; the control messages go with the first byte. The
    /// buffers must outlive the operation; ancdata is copied when it is made.
    /// Windows refuses ancillary data (std::system_error, EOPNOTSUPP).
    template <buffer_sequence Buffers>
    sendmsg_operation sendmsg(Buffers&& buffers, std::span<const ancillary> ancdata = {}, int flags = 0,
                              const std::optional<address>& to = std::nullopt) {
        detail::op_args a = args("sendmsg", nullptr, 0, flags);
#if COSOCK_WINDOWS
        if (!ancdata.empty()) throw_error(-EOPNOTSUPP, "sendmsg: ancillary data on Windows");
        return sendmsg_operation({a, detail::iov_list(buffers), {}, 0, to});
#else
        auto [control, controllen] = detail::build_control(ancdata);
        return sendmsg_operation({a, detail::iov_list(buffers), std::move(control), controllen, to});
#endif
    }

#if !COSOCK_WINDOWS
    /// `co_await sendfile(file, offset, count)` → the bytes sent: Python's
    /// sendfile over a descriptor. From `offset`, `count` bytes (std::nullopt:
    /// to the end of the file). A regular file goes to a stream zero-copy
    /// (Linux's sendfile(2)); a pipe, from where it stands, with splice(2);
    /// anything else (a datagram socket: one datagram per 8 KiB) is read and
    /// sent in chunks. The socket's timeout bounds the whole transfer. When
    /// any bytes were sent, the file's position is left after them, even
    /// after an error, as Python leaves it; bytes not sent stay in the file
    /// or the pipe, so ending a transfer early loses none. The file is read
    /// in the loop's thread: a pipe must be blocking (a non-blocking one is
    /// refused) and a pipe whose writer is slow stalls the loop while it
    /// waits. A negative offset, a count below 1, a directory, a socket, an
    /// offset in a pipe or a pipe to a datagram socket is an
    /// std::invalid_argument.
    sendfile_operation sendfile(int file, std::int64_t offset = 0, std::optional<std::int64_t> count = std::nullopt) {
        return sendfile_operation(detail::sendfile_args(args("sendfile"), type_, file, offset, count));
    }
#endif

    /// `co_await recvmsg(bufsize, ancbufsize, flags)` → recvmsg_result{data,
    /// ancdata, msg_flags, address}: Python's recvmsg. ancbufsize is the room
    /// for control messages (cmsg_space(n) for one of n bytes); those that do
    /// not fit are cut and msg_flags says msg_ctrunc. Descriptors received in
    /// ancdata (SCM_RIGHTS) are close-on-exec and the caller's to close;
    /// cosock::recv_fds does that for you. Negative sizes are an
    /// std::invalid_argument; Windows refuses ancbufsize > 0 (EOPNOTSUPP).
    template <std::integral N, std::integral M = std::size_t>
    recvmsg_operation recvmsg(N bufsize, M ancbufsize = 0, int flags = 0) {
        return recvmsg_operation(
            {receive_args("recvmsg", ancbufsize, flags), byte_count("recvmsg", "bufsize", bufsize)});
    }
    /// Python's recvmsg_into: recvmsg into the caller's buffers (scatter), in
    /// order → recvmsg_into_result{nbytes, ancdata, msg_flags, address}.
    template <class Buffers, std::integral M = std::size_t>
        requires mutable_buffer_sequence<Buffers>
    recvmsg_into_operation recvmsg_into(Buffers&& buffers, M ancbufsize = 0, int flags = 0) {
        return recvmsg_into_operation({receive_args("recvmsg_into", ancbufsize, flags), detail::iov_list(buffers)});
    }

  private:
    // A count given as any integer: negative, or more than one read can
    // return, is an std::invalid_argument naming it.
    template <std::integral N>
    static std::size_t byte_count(const char* what, const char* name, N n) {
        if constexpr (std::is_signed_v<N>)
            if (n < 0)
                throw std::invalid_argument(std::string(what) + ": negative " + name + " " + std::to_string(n));
        if (std::uintmax_t(n) > detail::sys::max_io)
            throw std::invalid_argument(std::string(what) + ": " + name + " " + std::to_string(n) +
                                        " is more than one call can carry (" + std::to_string(detail::sys::max_io) +
                                        ")");
        return std::size_t(n);
    }

    template <std::integral M>
    detail::message_receiver::args receive_args(const char* what, M ancbufsize, int flags) const {
        std::size_t room = byte_count(what, "ancbufsize", ancbufsize);
        if (COSOCK_WINDOWS && room) throw_error(-EOPNOTSUPP, std::string(what) + ": ancillary data on Windows");
        return {args(what, nullptr, 0, flags), room};
    }

    // How much of a buffer of `size` a *_into call reads.
    static std::size_t limit(const char* what, std::size_t size, std::size_t nbytes) {
        if (nbytes > size)
            throw std::invalid_argument(std::string(what) + ": nbytes " + std::to_string(nbytes) +
                                        " is more than the buffer's " + std::to_string(size));
        return nbytes ? nbytes : size;
    }

    friend class detail::accept_awaiter;
    friend struct detail::socket_access;
    friend class ssl_socket;

    // A new owner of the descriptor, for a file object. The block is
    // allocated on first use, so sockets without file objects never pay for it.
    detail::shared_fd share_fd(const char* what) {
        int fd = open_fd(what);
        if (!shared_) {
            shared_ = detail::shared_fd::adopt(sched_, fd);
            shared_.set_timeout(timeout_);
        }
        return shared_;
    }

    static void release(scheduler& s, int fd, bool closing) noexcept {
        detail::loop& l = detail::loop_of(s);
        l.io().release_fd(fd, closing, l.ready());
    }

    int open_fd(const char* what) const {
        if (fd_ < 0) throw_error(-EBADF, std::string(what) + ": the socket is closed");
        return fd_;
    }

    // The scheduler of an open socket. A closed or moved-from socket has none:
    // checked first, so that no reference to a null scheduler is ever formed.
    scheduler& open_scheduler(const char* what) const {
        scheduler* s = sched_.get();
        if (fd_ < 0 || !s) [[unlikely]]
            refuse(what);
        return *s;
    }
    [[noreturn]] [[gnu::noinline, gnu::cold]] void refuse(const char* what) const {
        open_fd(what);
        throw std::logic_error(std::string(what) +
                               ": the socket's scheduler was destroyed (close() still closes the descriptor)");
    }

    template <class Fn>
    address name_of(Fn fn, const char* what) const {
        address a;
        socklen_t len = address::capacity();
        detail::check(fn(open_fd(what), a.data(), &len), what);
        a.resize(len);
        return a;
    }

    int read_protocol(int fallback) const noexcept {
        int family = 0, type = 0, proto = 0;
        return detail::sys::socket_kind(fd_, family, type, proto) < 0 ? fallback : proto;
    }

    // What an operation takes from the socket when it is made; throws when
    // the socket is closed (or its scheduler gone).
    detail::op_args args(const char* name, const void* buf = nullptr, std::size_t len = 0, int flags = 0) const {
        return {&detail::loop_of(open_scheduler(name)), fd_, timeout_, const_cast<void*>(buf), len, flags};
    }

    detail::scheduler_ref sched_; // knows when the scheduler is gone
    int fd_ = -1;
    // Whether a receive that fills less than its buffer says the queue is
    // empty (the backend then waits for data before the next try): on a
    // stream, but not a Unix one, where a receive also stops short where
    // descriptors were sent with the bytes, the rest still queued.
    bool short_read_drains() const noexcept { return type_ == SOCK_STREAM && family_ != af_unix; }

    int family_ = af_unspec;
    int type_ = 0;
    int proto_ = 0;
    detail::timeout_t timeout_ = detail::no_timeout;
    detail::shared_fd shared_; // with file objects, once makefile() was called
};

/// What `co_await sock.accept()` gives: the new connection and the peer's
/// address, as Python's `conn, address = s.accept()`.
struct accept_result {
    socket conn;
    cosock::address address;
};

namespace detail {
/// `co_await sock.accept()` → accept_result{conn, address}.
class accept_awaiter : public op_awaiter {
  public:
    struct args {
        op_args op;
        int family, type, proto; // the listener's, which the connection shares
    };
    explicit accept_awaiter(const args& a)
        : op_awaiter(a.op, ops::accept), family_(a.family), type_(a.type), proto_(a.proto) {
        op().addr = peer_.data();
        op().addrcap = address::capacity();
    }
    // A connection accepted for a frame destroyed before it resumed: nobody will
    // take it, so it is closed here.
    ~accept_awaiter() {
        if (op().state == op_state::queued && op().res >= 0) sys::close(op().res);
    }

    accept_result await_resume() {
        int fd = result();
        peer_.resize(op().addrlen);
        accept_result r{cosock::socket(), peer_};
        r.conn.sched_ = event_loop().ref();
        r.conn.fd_ = fd;
        r.conn.family_ = family_;
        r.conn.type_ = type_;
        r.conn.proto_ = proto_;
        return r;
    }

  private:
    address peer_;
    int family_, type_, proto_;
};
} // namespace detail

inline accept_operation socket::accept() { return accept_operation({args("accept"), family_, type_, proto_}); }

/// A connected pair of sockets, like Python's socket.socketpair(): AF_UNIX
/// by default, AF_INET on Windows, where it is a loopback TCP connection
/// (AF_INET or AF_INET6, SOCK_STREAM only).
inline std::pair<socket, socket> socketpair(scheduler& s, int family = COSOCK_WINDOWS ? af_inet : af_unix,
                                            int type = sock_stream, int proto = 0) {
    int fds[2];
    detail::check(detail::sys::socketpair(family, type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), proto, fds), "socketpair");
    std::pair<socket, socket> p;
    try {
        p.first = socket::from_fd(s, fds[0]);
    } catch (...) {
        detail::sys::close(fds[0]);
        detail::sys::close(fds[1]);
        throw;
    }
    try {
        p.second = socket::from_fd(s, fds[1]);
    } catch (...) {
        detail::sys::close(fds[1]);
        throw;
    }
    return p;
}

} // namespace cosock
