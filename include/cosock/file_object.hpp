// cosock::file_object: what socket::makefile() returns — Python's file object
// over a socket, with awaitable read, readline, write, flush and close.
//
// Binary modes ("rb", "wb", "rwb") deal in bytes, text modes ("r", "w", "rw")
// in UTF-8 text with Python's newline handling. Both hold data in std::string
// (in binary mode a byte string, like Python's bytes). Sizes are bytes in both
// modes: where Python's text mode counts characters, cosock counts UTF-8 bytes
// (the same thing for the ASCII of HTTP, SMTP or Redis).
//
// The buffers live in the file object, never in a coroutine frame, and each
// system call is a synchronous non-blocking step that records its progress
// here before anything can suspend. So an operation abandoned part-way (its
// task destroyed) or failing part-way loses nothing: bytes already received
// stay readable, bytes already sent are not sent again.
//
// The reads and write() return an operation (operation.hpp): made, not
// started. Awaited, it gives its result at once, with no coroutine frame and
// no allocation beyond the result, when the buffers already hold it (a line
// that has arrived, a write that stays in the buffer); otherwise it runs the
// call as a task that receives or sends. A server of pipelined requests thus
// costs a frame only when it must wait. An operation refers to its file
// object: keep the file object until the operation has been awaited.
//
// A read that must wait for the peer first sends what writes have left in the
// buffer, as a tied stream does: replies to pipelined requests leave in one
// send, and none waits for the next request (see fill()).
//
// Methods not marked noexcept throw std::system_error: the errno of a failed
// call with the operation's name; EBADF when the file object is closed or not
// open in that direction, when the descriptor is closed under a waiting
// operation, or when the file object is closed, destroyed or
// moved from while the operation waits (it then touches the file object no
// more). A stop request ends an operation with cosock::cancelled_error. One
// reading and one writing coroutine may use it at a time.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <cosock/buffer.hpp>
#include <cosock/detail/file_mode.hpp>
#include <cosock/detail/os_category.hpp>
#include <cosock/detail/read_buffer.hpp>
#include <cosock/detail/retry_awaiter.hpp>
#include <cosock/detail/shared_fd.hpp>
#include <cosock/detail/stream_transport.hpp>
#include <cosock/detail/sys.hpp>
#include <cosock/error.hpp>
#include <cosock/operation.hpp>
#include <cosock/task.hpp>

namespace cosock {

class socket;
class ssl_socket;
class file_object;

namespace detail {

/// Which call of a file object a file_call awaiter runs.
enum class file_call_kind : unsigned char { read, read1, readinto, readline, peek, write };

/// The awaiter of a file object's read calls and write(): the result at once
/// when the buffers hold it (see try_now), else the call's task, run here.
template <class T, file_call_kind Kind>
class file_call {
  public:
    struct args {
        file_object* file = nullptr;
        std::ptrdiff_t n = 0;   // Python's size argument; write: the size written
        std::span<char> into{}; // readinto
        bool flush_now = false; // write: the buffer must go out before it returns
    };
    explicit file_call(args a) noexcept : a_(a) {}
    file_call(const file_call&) = delete;
    file_call& operator=(const file_call&) = delete;

    bool await_ready() {
        value_ = try_now();
        return value_.has_value();
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> caller) {
        task_ = start();
        auto waiting = task_.operator co_await();
        (void)waiting.await_ready();
        return waiting.await_suspend(caller);
    }
    T await_resume() {
        if (value_) return std::move(*value_);
        return task_.operator co_await().await_resume();
    }

  private:
    // The result from the buffers alone, or nothing when the call must
    // receive or send, or must fail (its task throws then).
    std::optional<T> try_now();
    task<T> start();

    args a_;
    std::optional<T> value_;
    task<T> task_;
};

} // namespace detail

/// makefile()'s keyword arguments, as designated initializers:
/// `sock.makefile("r", -1, {.newline = "\r\n"})`. Binary modes take neither.
struct file_options {
    /// UTF-8 is the one encoding ("utf-8", "utf8", any case). Text is not
    /// validated: bytes pass through unchanged either way.
    std::optional<std::string_view> encoding = std::nullopt;
    /// Unset is Python's None: "\n", "\r\n" and "\r" end a line and are read
    /// as "\n". "" recognizes all three and translates nothing. "\n", "\r" or
    /// "\r\n" is then the only line end, and a written "\n" becomes it.
    std::optional<std::string_view> newline = std::nullopt;
};

/// A buffered stream over a socket's descriptor, made by socket::makefile().
/// Move-only. The descriptor stays open until the socket and every file object
/// made from it are closed.
class file_object {
  public:
    /// The buffer size for makefile's buffering -1 (and 1, line-buffered).
    static constexpr std::size_t default_buffer_size = 8192;
    /// The longest line readline() returns when given no limit.
    static constexpr std::size_t default_max_line = 64 * 1024;

    /// A closed file object.
    file_object() noexcept = default;
    file_object(file_object&& other) noexcept { *this = std::move(other); }
    file_object& operator=(file_object&& other) noexcept;
    /// A destructor cannot wait: it sends what the kernel takes at once of
    /// unflushed writes and drops the rest. co_await close() to send it all.
    ~file_object() {
        end_waits();
        send_without_waiting();
    }

    // Reading. End of stream is not an error: it gives empty results.

    /// What the reads and write() return: `co_await` runs the call, at once
    /// when the buffers hold its result (see the top of this file).
    template <detail::file_call_kind Kind>
    using string_operation = operation<detail::file_call<std::string, Kind>>;
    template <detail::file_call_kind Kind>
    using size_operation = operation<detail::file_call<std::size_t, Kind>>;

    /// Python's read(n): n bytes, fewer only at end of stream; with n < 0
    /// everything up to the end of stream.
    string_operation<detail::file_call_kind::read> read(std::ptrdiff_t n = -1) noexcept {
        return string_operation<detail::file_call_kind::read>({this, n});
    }

    /// Python's read1(n): what is buffered, or else what one receive brings;
    /// at most n bytes if n ≥ 0. Empty only at end of stream (or for n = 0).
    string_operation<detail::file_call_kind::read1> read1(std::ptrdiff_t n = -1) noexcept {
        return string_operation<detail::file_call_kind::read1>({this, n});
    }

    /// Python's readinto(b): fills `buf`, with fewer bytes only at end of
    /// stream; → the number of bytes read. `buf` must outlive the operation.
    template <mutable_buffer B>
    size_operation<detail::file_call_kind::readinto> readinto(B&& buf) noexcept {
        return size_operation<detail::file_call_kind::readinto>(
            {this, 0, {reinterpret_cast<char*>(std::ranges::data(buf)), std::ranges::size(buf)}});
    }

    /// Python's readline(size): the next line with its line end; the last line
    /// of the stream may have none. With limit ≥ 0 at most `limit` bytes (the
    /// rest of the line comes next). Without one, a line longer than
    /// max_line() throws std::system_error(errc::message_size) and stays
    /// buffered, so a peer that never ends its line cannot exhaust memory.
    string_operation<detail::file_call_kind::readline> readline(std::ptrdiff_t limit = -1) noexcept {
        return string_operation<detail::file_call_kind::readline>({this, limit});
    }

    /// Python's readlines(hint): the lines up to end of stream, or up to the
    /// one that takes their total size past `hint` bytes (hint ≤ 0: no hint).
    /// Each line is bounded by max_line() as in readline(); when one is too
    /// long, none is consumed.
    template <int = 0>
    task<std::vector<std::string>> readlines(std::ptrdiff_t hint = -1);

    /// Python's peek(n): buffered bytes, left in the buffer; receives once if
    /// none is buffered. At most n bytes if n > 0 (Python may return more).
    string_operation<detail::file_call_kind::peek> peek(std::ptrdiff_t n = 0) noexcept {
        return string_operation<detail::file_call_kind::peek>({this, n});
    }

    /// The bytes received and not read yet (in text mode, after newline
    /// translation: "\r\n" counts 1): a read of that many, or a readline that
    /// finds its line end among them, returns without receiving. Never waits.
    /// A server of pipelined requests flushes its replies when it is 0, just
    /// before the next read would wait, so that replies leave in batches and
    /// none waits behind a request that has not come (see the README).
    std::size_t buffered() const noexcept { return rbuf_.size(); }

    // Writing. A write copies its bytes into the buffer when called (so the
    // caller's buffer may go away) and throws EBADF at once if not writable;
    // awaiting what it returns sends when the buffer exceeds its size, when a
    // line end is written to a line-buffered file, or at once when unbuffered
    // (and else returns at once). Awaiting it again does not write again.

    /// Python's write(b), translating "\n" in text mode with newline "\r" or
    /// "\r\n"; → the size of `data`. Unlike Python's unbuffered raw write it
    /// never sends only part of `data`.
    template <const_buffer B>
    size_operation<detail::file_call_kind::write> write(const B& data) {
        std::size_t n = std::ranges::size(data);
        bool flush_now = buffer_write(as_chars(data), "write");
        return size_operation<detail::file_call_kind::write>({this, static_cast<std::ptrdiff_t>(n), {}, flush_now});
    }

    /// Python's writelines(lines): each is written as by write(), with no
    /// separator added.
    template <std::ranges::input_range R>
    task<> writelines(const R& lines) requires const_buffer<std::ranges::range_reference_t<const R&>> {
        require(mode_.writable, "writelines");
        bool flush_now = false;
        for (const auto& line : lines) flush_now |= buffer_write(as_chars(line), "writelines");
        return finish_writelines(flush_now);
    }

    /// Python's flush(): sends everything buffered.
    template <int = 0>
    task<> flush();

    /// Python's close(): ends the reads and writes other coroutines are waiting
    /// in (EBADF), flushes, then releases the descriptor; idempotent. If
    /// flushing fails the file object is closed all the same and the error is
    /// thrown. Closing the last owner of the descriptor closes it, ending the
    /// socket operations still waiting on it with EBADF.
    template <int = 0>
    task<> close();

    bool closed() const noexcept { return !fd_; }
    /// Whether the mode reads ("r") or writes ("w").
    bool readable() const noexcept { return mode_.readable; }
    bool writable() const noexcept { return mode_.writable; }
    /// The mode given to makefile().
    const std::string& mode() const noexcept { return mode_name_; }
    /// The descriptor; -1 once closed, or once the socket detached it.
    int fileno() const noexcept { return fd_ ? fd_.fd() : -1; }

    std::size_t max_line() const noexcept { return max_line_; }
    /// Sets the longest line readline() returns without a limit, line end
    /// included. Throws std::invalid_argument for 0.
    void set_max_line(std::size_t n) {
        if (n == 0) throw std::invalid_argument("file_object::set_max_line: 0 would refuse every line");
        max_line_ = n;
    }

  private:
    friend class socket;
    friend class ssl_socket;
    template <class T, detail::file_call_kind Kind>
    friend class detail::file_call;

    // The calls' tasks, for when the buffers do not hold the result.
    template <int = 0>
    task<std::string> read_task(std::ptrdiff_t n);
    template <int = 0>
    task<std::string> read1_task(std::ptrdiff_t n);
    template <int = 0>
    task<std::string> readline_task(std::ptrdiff_t limit);
    template <int = 0>
    task<std::string> peek_task(std::ptrdiff_t n);

    file_object(detail::shared_fd fd, const detail::file_mode& m, std::string_view mode, bool stream,
                std::shared_ptr<detail::stream_transport> transport = nullptr)
        : fd_(std::move(fd)), mode_(m), mode_name_(mode), rbuf_(m.buffer_size, m.translate_cr),
          transport_(std::move(transport)), stream_(stream) {}

    template <const_buffer B>
    static std::string_view as_chars(const B& b) noexcept {
        return {reinterpret_cast<const char*>(std::ranges::data(b)), std::ranges::size(b)};
    }

    void require(bool direction, const char* op) const {
        if (!fd_) throw_error(-EBADF, std::string(op) + ": the file object is closed");
        if (!direction)
            throw_error(-EBADF, std::string(op) + ": the file object's mode is " + detail::quoted(mode_name_));
    }

    // One receive into the read buffer: `co_await receive(need, op)` → bytes
    // received, 0 at end of stream, -EAGAIN for none yet (look again). `need`
    // is at least 1: a zero-length receive would look like the end of stream.
    auto receive(std::size_t need, const char* op) {
        need = std::max<std::size_t>(need, 1);
        auto step = [this, need](detail::io_op& record) -> int {
            int fd = fileno();
            if (fd < 0) return -EBADF;
            std::span<char> room = rbuf_.prepare(need, mode_.unbuffered);
            record.len = room.size(); // a short receive from a stream: the queue is empty
            int r = detail::sys::recv(fd, room.data(), room.size(), 0);
            if (r >= 0) rbuf_.commit(std::size_t(r), r == 0);
            return r;
        };
        return detail::retry_awaiter(fd_.sched(), fileno(),
                                     stream_ ? detail::ops::wait_readable_stream : detail::ops::wait_readable, op,
                                     step, fd_.timeout(), &waiting_[0], need);
    }

    // Sends from the write buffer until it is empty: `co_await send_buffered(op)`
    // → 0 when everything is out, -EAGAIN when the kernel took only part.
    auto send_buffered(const char* op) {
        auto step = [this](detail::io_op&) -> int {
            int fd = fileno();
            if (fd < 0) return -EBADF;
            while (wpos_ < wbuf_.size()) {
                int r = detail::sys::send(fd, wbuf_.data() + wpos_, wbuf_.size() - wpos_, 0);
                if (r < 0) return r;
                wpos_ += std::size_t(r);
            }
            wbuf_.clear();
            wpos_ = 0;
            return 0;
        };
        return detail::retry_awaiter(fd_.sched(), fileno(), detail::ops::wait_writable, op, step, fd_.timeout(),
                                     &waiting_[1]);
    }

    // The same two steps through a transport (a TLS layer): each call site
    // picks `transport_ ? via : plain`, so the plain path stays as it was.
    template <int = 0>
    task<int> receive_via(std::size_t need, const char* op) {
        std::span<char> room = rbuf_.prepare(std::max<std::size_t>(need, 1), mode_.unbuffered);
        std::size_t n = co_await transport_->receive(room, op, &waiting_[0]);
        rbuf_.commit(n, n == 0);
        co_return int(n);
    }
    template <int = 0>
    task<int> send_via(const char* op) {
        co_await transport_->send(&wbuf_, &wpos_, op, &waiting_[1]);
        wbuf_.clear();
        wpos_ = 0;
        co_return 0;
    }

    bool write_pending() const noexcept { return wpos_ < wbuf_.size(); }

    // One receive for a read that found too little buffered: → bytes
    // received, 0 at end of stream, -EAGAIN for none yet. Before it waits
    // for the peer it sends what writes have left in the buffer, as a tied
    // stream does (std::cin flushes std::cout): a reply never waits there for
    // the next request, even one that has partly arrived. A failure to send
    // is the next flush's or close()'s to report (the bytes stay buffered);
    // with another coroutine's write already waiting to send, it is left to
    // that one. It asks for about what is buffered already, at least a
    // buffer's size, so the buffer grows with what arrives, not with what a
    // read asks for (read(1 << 30) holds no gigabyte before it comes).
    template <int = 0>
    task<int> fill(std::size_t need, const char* op) {
        if (write_pending() && !waiting_[1]) try {
                while (write_pending()) {
                    if (transport_)
                        co_await send_via(op);
                    else
                        co_await send_buffered(op);
                }
            } catch (const std::system_error&) {
            }
        need = std::min(need, std::max(rbuf_.size(), default_buffer_size));
        if (transport_) co_return co_await receive_via(need, op);
        co_return co_await receive(need, op);
    }

    // Appends to the write buffer; → whether the buffer must be sent now.
    bool buffer_write(std::string_view data, const char* op);
    template <int = 0>
    task<std::size_t> finish_write(bool flush_now, std::size_t n);
    template <int = 0>
    task<> finish_writelines(bool flush_now);
    template <int = 0>
    task<std::size_t> read_into(std::span<char> out);

    // readline() without a limit: true once the line at the front of `v` is
    // certainly longer than max_line (`end`: where line_end() says it ends).
    bool too_long(std::string_view v, std::size_t end) const noexcept;
    [[noreturn]] void throw_too_long(const char* op) const;

    void send_without_waiting() noexcept;

    // Ends the waits of the operations in progress (EBADF): the file object is
    // closed, destroyed or moved from, and their steps would touch it.
    void end_waits() noexcept {
        for (detail::io_awaiter* w : waiting_)
            if (w) w->end(detail::end_reason::closed);
    }

    detail::shared_fd fd_;
    detail::file_mode mode_;
    std::string mode_name_;
    detail::read_buffer rbuf_;
    std::string wbuf_; // bytes to send: [wpos_, size)
    std::size_t wpos_ = 0;
    std::size_t max_line_ = default_max_line;
    detail::io_awaiter* waiting_[2] = {};                 // the read and the write waiting now, if any
    std::shared_ptr<detail::stream_transport> transport_; // none: recv/send on the descriptor
    bool stream_ = false;                                 // a stream socket's: a short receive drains it
};

inline file_object& file_object::operator=(file_object&& other) noexcept {
    if (this != &other) {
        end_waits();
        other.end_waits();
        send_without_waiting();
        fd_ = std::move(other.fd_);
        mode_ = other.mode_;
        mode_name_ = std::move(other.mode_name_);
        rbuf_ = std::move(other.rbuf_);
        wbuf_ = std::exchange(other.wbuf_, std::string());
        wpos_ = std::exchange(other.wpos_, 0);
        max_line_ = other.max_line_;
        transport_ = std::move(other.transport_);
        stream_ = other.stream_;
    }
    return *this;
}

template <int>
task<std::string> file_object::read_task(std::ptrdiff_t n) {
    require(mode_.readable, "read");
    bool eof = false;
    while (!eof && (n < 0 || rbuf_.size() < std::size_t(n))) {
        int r = co_await fill(n < 0 ? mode_.buffer_size : std::size_t(n) - rbuf_.size(), "read");
        eof = r == 0;
    }
    co_return rbuf_.take(n < 0 ? rbuf_.size() : std::min(std::size_t(n), rbuf_.size()));
}

template <int>
task<std::string> file_object::read1_task(std::ptrdiff_t n) {
    require(mode_.readable, "read1");
    bool eof = n == 0;
    while (!eof && rbuf_.size() == 0) {
        int r = co_await fill(n < 0 ? mode_.buffer_size : std::size_t(n), "read1");
        eof = r == 0;
    }
    co_return rbuf_.take(n < 0 ? rbuf_.size() : std::min(std::size_t(n), rbuf_.size()));
}

template <int>
task<std::size_t> file_object::read_into(std::span<char> out) {
    require(mode_.readable, "readinto");
    bool eof = false;
    while (!eof && rbuf_.size() < out.size()) {
        int r = co_await fill(out.size() - rbuf_.size(), "readinto");
        eof = r == 0;
    }
    std::size_t n = std::min(out.size(), rbuf_.size());
    if (n > 0) std::memcpy(out.data(), rbuf_.view().data(), n);
    rbuf_.consume(n);
    co_return n;
}

template <int>
task<std::string> file_object::readline_task(std::ptrdiff_t limit) {
    require(mode_.readable, "readline");
    std::size_t from = 0; // no line end starts before it
    bool eof = false;
    for (;;) {
        std::string_view v = rbuf_.view();
        std::size_t end = detail::line_end(v, mode_.read_newline, from, limit < 0 ? detail::no_limit : static_cast<std::size_t>(limit), eof);
        if (limit < 0 && too_long(v, end)) throw_too_long("readline");
        if (end != detail::no_limit) co_return rbuf_.take(end);
        from = v.empty() ? 0 : v.size() - 1; // a '\r' at the end may begin "\r\n"
        {
            int r = co_await fill(1, "readline");
            eof = r == 0;
        }
    }
}

template <int>
task<std::vector<std::string>> file_object::readlines(std::ptrdiff_t hint) {
    require(mode_.readable, "readlines");
    // The lines stay buffered until all are found; only their ends are kept here.
    std::vector<std::size_t> ends;
    std::size_t found = 0, from = 0;
    bool eof = false;
    for (;;) {
        std::string_view v = rbuf_.view().substr(found);
        std::size_t end = detail::line_end(v, mode_.read_newline, from, detail::no_limit, eof);
        if (too_long(v, end)) throw_too_long("readlines");
        if (end == detail::no_limit) {
            from = v.empty() ? 0 : v.size() - 1;
            {
                int r = co_await fill(1, "readlines");
                eof = r == 0;
            }
            continue;
        }
        if (end == 0) break; // end of stream
        found += end;
        from = 0;
        ends.push_back(found);
        if (hint > 0 && found > std::size_t(hint)) break;
    }
    std::vector<std::string> lines;
    lines.reserve(ends.size());
    std::size_t start = 0;
    for (std::size_t end : ends) {
        lines.push_back(rbuf_.take(end - start));
        start = end;
    }
    co_return lines;
}

template <int>
task<std::string> file_object::peek_task(std::ptrdiff_t n) {
    require(mode_.readable, "peek");
    bool eof = false;
    while (!eof && rbuf_.size() == 0) {
        int r = co_await fill(1, "peek");
        eof = r == 0;
    }
    std::string_view v = rbuf_.view();
    co_return std::string(n > 0 ? v.substr(0, std::size_t(n)) : v);
}

inline bool file_object::buffer_write(std::string_view data, const char* op) {
    require(mode_.writable, op);
    if (mode_.write_newline == "\n") {
        wbuf_.append(data);
    } else {
        for (std::size_t at = 0;;) {
            std::size_t lf = data.find('\n', at);
            wbuf_.append(data.substr(at, lf - at));
            if (lf == data.npos) break;
            wbuf_.append(mode_.write_newline);
            at = lf + 1;
        }
    }
    // Python's line buffering flushes at "\r" as well as at "\n".
    return mode_.unbuffered || wbuf_.size() - wpos_ > mode_.buffer_size ||
           (mode_.line_buffering && data.find_first_of("\r\n") != data.npos);
}

template <int>
task<std::size_t> file_object::finish_write(bool flush_now, std::size_t n) {
    while (flush_now && write_pending()) {
        if (transport_)
            co_await send_via("write");
        else
            co_await send_buffered("write");
    }
    co_return n;
}

template <int>
task<> file_object::finish_writelines(bool flush_now) {
    while (flush_now && write_pending()) {
        if (transport_)
            co_await send_via("writelines");
        else
            co_await send_buffered("writelines");
    }
}

template <int>
task<> file_object::flush() {
    require(true, "flush");
    while (write_pending()) {
        if (transport_)
            co_await send_via("flush");
        else
            co_await send_buffered("flush");
    }
}

template <int>
task<> file_object::close() {
    if (!fd_) co_return;
    end_waits(); // a read or a flush waiting in another coroutine ends with EBADF
    std::exception_ptr failed;
    try {
        while (write_pending()) {
            if (transport_)
                co_await send_via("close");
            else
                co_await send_buffered("close");
        }
    } catch (...) {
        failed = std::current_exception();
    }
    fd_.reset();
    transport_.reset();
    rbuf_.clear();
    wbuf_ = std::string();
    wpos_ = 0;
    if (failed) std::rethrow_exception(failed);
}

inline bool file_object::too_long(std::string_view v, std::size_t end) const noexcept {
    if (end != detail::no_limit) return end > max_line_;
    // No line end yet: past max_line bytes the line is too long. With exactly
    // max_line it is not yet: the stream may end there (a last line without
    // a line end), or a '\r' there may end it (newline="").
    return v.size() > max_line_;
}

inline void file_object::throw_too_long(const char* op) const {
    throw std::system_error(detail::os_error(std::errc::message_size),
                            std::string(op) + ": no line end within max_line (" + std::to_string(max_line_) +
                                " bytes); the bytes stay buffered");
}

inline void file_object::send_without_waiting() noexcept {
    if (transport_) {
        if (fd_ && write_pending()) transport_->send_without_waiting(wbuf_, wpos_);
        return;
    }
    int fd = fileno();
    while (fd >= 0 && write_pending()) {
        int r = detail::sys::send(fd, wbuf_.data() + wpos_, wbuf_.size() - wpos_, 0);
        if (r <= 0) break;
        wpos_ += std::size_t(r);
    }
}

// Each fast path gives exactly what the call's task would give without
// receiving or sending; any doubt (closed, wrong mode, a line too long, too
// few bytes) goes to the task, which waits or throws.
template <class T, detail::file_call_kind Kind>
std::optional<T> detail::file_call<T, Kind>::try_now() {
    file_object& f = *a_.file;
    const std::ptrdiff_t n = a_.n;
    if constexpr (Kind == file_call_kind::write) {
        if (!a_.flush_now) return std::size_t(n);
        return std::nullopt;
    } else {
        if (!f.fd_ || !f.mode_.readable) return std::nullopt;
        read_buffer& b = f.rbuf_;
        if constexpr (Kind == file_call_kind::read) {
            if (n >= 0 && b.size() >= std::size_t(n)) return b.take(std::size_t(n));
        } else if constexpr (Kind == file_call_kind::read1) {
            if (n == 0) return std::string();
            if (b.size() > 0) return b.take(n < 0 ? b.size() : std::min(std::size_t(n), b.size()));
        } else if constexpr (Kind == file_call_kind::readinto) {
            if (b.size() >= a_.into.size()) {
                if (!a_.into.empty()) std::memcpy(a_.into.data(), b.view().data(), a_.into.size());
                b.consume(a_.into.size());
                return a_.into.size();
            }
        } else if constexpr (Kind == file_call_kind::readline) {
            std::string_view v = b.view();
            std::size_t end = line_end(v, f.mode_.read_newline, 0, n < 0 ? no_limit : std::size_t(n), false);
            if (end != no_limit && !(n < 0 && f.too_long(v, end))) return b.take(end);
        } else if constexpr (Kind == file_call_kind::peek) {
            std::string_view v = b.view();
            if (!v.empty()) return std::string(n > 0 ? v.substr(0, std::size_t(n)) : v);
        }
        return std::nullopt;
    }
}

template <class T, detail::file_call_kind Kind>
task<T> detail::file_call<T, Kind>::start() {
    file_object& f = *a_.file;
    if constexpr (Kind == file_call_kind::read)
        return f.read_task(a_.n);
    else if constexpr (Kind == file_call_kind::read1)
        return f.read1_task(a_.n);
    else if constexpr (Kind == file_call_kind::readinto)
        return f.read_into(a_.into);
    else if constexpr (Kind == file_call_kind::readline)
        return f.readline_task(a_.n);
    else if constexpr (Kind == file_call_kind::peek)
        return f.peek_task(a_.n);
    else
        return f.finish_write(a_.flush_now, std::size_t(a_.n));
}

} // namespace cosock
