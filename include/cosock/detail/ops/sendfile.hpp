// sendfile(file, offset, count): a file's bytes to a socket, in one of three
// ways, none of which can lose a byte when the transfer ends early:
// - zero-copy with Linux's sendfile(2), from a regular file to a stream;
// - splice(2) from a pipe to a stream: what the socket does not take stays
//   in the pipe;
// - read and send (pread, then send) where the kernel refuses both, such as a
//   datagram socket (one datagram per chunk): a chunk read and not sent is
//   read again from the file by whoever goes on from the position left.
// Like sendall, each try goes as far as the socket takes; io_op::done counts
// the bytes sent, so the next try, after a wait for writability, resumes
// there. io_uring has no sendfile: it waits with a poll and runs perform().
//
// The file is read in the loop's thread: a regular file's read does not wait
// for a peer, a blocking pipe's may (see socket::sendfile).
#pragma once

#include <cosock/detail/platform.hpp>

#if !COSOCK_WINDOWS

#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <fcntl.h>

#include <cosock/detail/ops/awaiter.hpp>
#include <cosock/detail/ops/common.hpp>

namespace cosock::detail {

/// How a sendfile moves the bytes (see above).
enum class sendfile_mode : std::uint8_t { zero_copy, splice, copy };

/// What a sendfile operation keeps besides io_op: op.buf points here.
struct sendfile_state {
    int file = -1;
    std::uint64_t offset = 0; // where the transfer starts in the file
    std::uint64_t count = 0;  // bytes wanted (UINT64_MAX: up to the end of the file)
    sendfile_mode mode = sendfile_mode::zero_copy;
    bool datagram = false;   // each chunk read is one datagram
    bool progressed = false; // the last try sent something
    std::unique_ptr<char[]> chunk;
    std::size_t chunk_size = 0;
    std::size_t pos = 0, end = 0; // the bytes of chunk not sent yet
};

} // namespace cosock::detail

namespace cosock::detail::ops {

inline constexpr std::size_t stream_chunk = 64 * 1024;
inline constexpr std::size_t datagram_chunk = 8 * 1024;

// One step of the read-and-send copy: false when `res` holds the outcome.
inline bool copy_step(io_op& op, sendfile_state& st, int& res) noexcept {
    if (st.pos == st.end) {
        if (!st.chunk) {
            st.chunk_size = st.datagram ? datagram_chunk : stream_chunk;
            st.chunk.reset(new (std::nothrow) char[st.chunk_size]);
            if (!st.chunk) return res = -ENOMEM, false;
        }
        std::size_t want = std::size_t(std::min<std::uint64_t>(st.chunk_size, st.count - op.done));
        long n = sys::read_file(st.file, st.chunk.get(), want, st.offset + op.done);
        if (n <= 0) return res = int(n), false; // the end of the file, or its error
        st.pos = 0;
        st.end = std::size_t(n);
    }
    int r = sys::send(op.fd, st.chunk.get() + st.pos, st.end - st.pos, 0);
    if (r < 0) return res = r, false;
    st.pos += std::size_t(r);
    op.done += std::size_t(r);
    st.progressed = true;
    return true;
}

inline int perform_sendfile(io_op& op) noexcept {
    auto& st = *static_cast<sendfile_state*>(op.buf);
    st.progressed = false;
    int res = 0;
    while (op.done < st.count) {
        if (st.mode == sendfile_mode::copy) {
            if (!copy_step(op, st, res)) return res;
            continue;
        }
        std::size_t want = std::size_t(std::min<std::uint64_t>(st.count - op.done, sys::max_io));
        std::uint64_t at = st.offset + op.done;
        long n = st.mode == sendfile_mode::splice ? sys::splice_from_pipe(op.fd, st.file, want)
                                                  : sys::sendfile(op.fd, st.file, at, want);
        if (n > 0) {
            op.done += std::size_t(n);
            st.progressed = true;
        } else if (n == 0) {
            return 0; // the end of the file, or the pipe's writers are gone
        } else if (st.mode == sendfile_mode::zero_copy && op.done == 0 &&
                   (n == -EINVAL || n == -ENOSYS || n == -EOPNOTSUPP)) {
            st.mode = sendfile_mode::copy; // a file the kernel cannot send from
        } else {
            return int(n);
        }
    }
    return 0;
}

// EAGAIN just after a readiness report is a dead end only for a datagram
// socket that took nothing (see datagram_without_room); after some datagrams
// went, the receiver's queue is full and writability will say when it is not.
inline bool sendfile_dead_end(const io_op& op, int& res) noexcept {
    return !static_cast<const sendfile_state*>(op.buf)->progressed && datagram_without_room(op, res);
}

inline constexpr op_type sendfile{
    .name = "sendfile",
    .dir = direction::write,
    .moves_data = true,
    .perform = perform_sendfile,
    .dead_end = sendfile_dead_end,
};

} // namespace cosock::detail::ops

namespace cosock::detail {

/// `co_await sock.sendfile(file, offset, count)` → the bytes sent. When any
/// were sent, the file's position is left after them, even when the transfer
/// fails, as Python leaves it.
class sendfile_awaiter : public op_awaiter {
  public:
    struct args {
        op_args op;
        int file;
        std::uint64_t offset, count;
        sendfile_mode mode;
        bool datagram;
    };
    explicit sendfile_awaiter(const args& a) : op_awaiter(a.op, ops::sendfile) {
        st_.file = a.file;
        st_.offset = a.offset;
        st_.count = a.count;
        st_.mode = a.mode;
        st_.datagram = a.datagram;
        op().buf = &st_;
        op().len = std::size_t(a.count);
    }
    std::size_t await_resume() {
        int res = settle();
        // As Python, only when something was sent; a pipe has no position.
        if (op().done > 0 && st_.mode != sendfile_mode::splice)
            ::lseek(st_.file, off_t(st_.offset + op().done), SEEK_SET);
        if (res < 0) fail(res, "sendfile");
        return op().done;
    }

  private:
    sendfile_state st_;
};

/// A sendfile's arguments checked, and how it will run: what
/// socket::sendfile takes besides the socket's own (`op`, `type`).
inline sendfile_awaiter::args sendfile_args(const op_args& op, int type, int file, std::int64_t offset,
                                           std::optional<std::int64_t> count) {
    const std::string of = "sendfile of descriptor " + std::to_string(file);
    if (offset < 0) throw std::invalid_argument(of + ": negative offset " + std::to_string(offset));
    if (count && *count <= 0) throw std::invalid_argument(of + ": count must be positive, not " + std::to_string(*count));
    struct stat st {};
    if (::fstat(file, &st) < 0) throw_error(-errno, of);
    if (S_ISDIR(st.st_mode)) throw std::invalid_argument(of + ": a directory");
    if (S_ISSOCK(st.st_mode)) throw std::invalid_argument(of + ": a socket, not a file");
    bool pipe = S_ISFIFO(st.st_mode);
    bool datagram = type != SOCK_STREAM;
    if (pipe) {
        if (offset != 0) throw std::invalid_argument(of + ": offset " + std::to_string(offset) + " in a pipe");
        if (datagram)
            throw std::invalid_argument(of + ": a pipe to a datagram socket (bytes read and not sent would be lost)");
        int flags = ::fcntl(file, F_GETFL);
        if (flags >= 0 && (flags & O_NONBLOCK))
            throw std::invalid_argument(of + ": a non-blocking pipe (sendfile cannot wait for it)");
    }
    sendfile_mode mode = pipe ? sendfile_mode::splice
                         : S_ISREG(st.st_mode) && !datagram ? sendfile_mode::zero_copy
                                                            : sendfile_mode::copy;
    return {op, file, std::uint64_t(offset), count ? std::uint64_t(*count) : UINT64_MAX, mode, datagram};
}

} // namespace cosock::detail

#endif
