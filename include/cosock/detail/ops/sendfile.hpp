// sendfile(file, offset, count): a file's bytes to a socket. Zero-copy with
// Linux's sendfile(2) while the kernel takes it; otherwise (a file it cannot
// map, such as a pipe, a datagram socket, or a system without the call) the
// file is read into a buffer of the awaiter's and sent, chunk by chunk. Like
// sendall, each try goes as far as the socket takes; io_op::done counts the
// bytes sent, so the next try, after a wait for writability, resumes there.
// io_uring has no sendfile: it waits with a poll and runs perform().
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

/// What a sendfile operation keeps besides io_op: op.buf points here.
struct sendfile_state {
    int file = -1;
    std::uint64_t offset = 0; // where the transfer starts in the file
    std::uint64_t count = 0;  // bytes wanted (UINT64_MAX: up to the end of the file)
    bool copy = false;        // read and send instead of sendfile(2)
    bool sequential = false;  // read() where the file stands: it cannot seek (a pipe)
    bool datagram = false;    // each chunk read is one datagram
    bool ended = false;       // the file has no more bytes
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
        if (st.ended) return res = 0, false;
        if (!st.chunk) {
            st.chunk_size = st.datagram ? datagram_chunk : stream_chunk;
            st.chunk.reset(new (std::nothrow) char[st.chunk_size]);
            if (!st.chunk) return res = -ENOMEM, false;
        }
        std::uint64_t at = st.offset + op.done;
        std::size_t want = std::size_t(std::min<std::uint64_t>(st.chunk_size, st.count - op.done));
        long n = sys::read_file(st.file, st.chunk.get(), want, st.sequential ? nullptr : &at);
        if (n == -ESPIPE && !st.sequential && st.offset == 0 && op.done == 0) {
            st.sequential = true; // a pipe: read it from where it stands
            return true;
        }
        // A read that would wait (a non-blocking pipe emptied) cannot be
        // waited for here: socket::sendfile refuses such files up front.
        if (n == -EAGAIN) return res = -EIO, false;
        if (n < 0) return res = int(n), false;
        if (n == 0) return res = 0, false;
        st.pos = 0;
        st.end = std::size_t(n);
        if (std::size_t(n) < want && !st.sequential) st.ended = true;
    }
    int r = sys::send(op.fd, st.chunk.get() + st.pos, st.end - st.pos, 0);
    if (r < 0) return res = r, false;
    st.pos += std::size_t(r);
    op.done += std::size_t(r);
    return true;
}

inline int perform_sendfile(io_op& op) noexcept {
    auto& st = *static_cast<sendfile_state*>(op.buf);
    int res = 0;
    while (op.done < st.count) {
        if (st.copy) {
            if (!copy_step(op, st, res)) return res;
            continue;
        }
        std::uint64_t at = st.offset + op.done;
        long n = sys::sendfile(op.fd, st.file, at, std::size_t(std::min<std::uint64_t>(st.count - op.done, sys::max_io)));
        if (n > 0) {
            op.done += std::size_t(n);
        } else if (n == 0) {
            return 0; // the end of the file
        } else if (op.done == 0 && (n == -EINVAL || n == -ENOSYS || n == -EOPNOTSUPP)) {
            st.copy = true; // a file the kernel cannot send from: copy it
        } else {
            return int(n);
        }
    }
    return 0;
}

inline constexpr op_type sendfile{
    .name = "sendfile",
    .dir = direction::write,
    .moves_data = true,
    .perform = perform_sendfile,
    .dead_end = datagram_without_room,
};

} // namespace cosock::detail::ops

namespace cosock::detail {

/// `co_await sock.sendfile(file, offset, count)` → the bytes sent. The file's
/// position is left after them (where it can seek), even when the transfer
/// fails, as Python leaves it.
class sendfile_awaiter : public op_awaiter {
  public:
    struct args {
        op_args op;
        int file;
        std::uint64_t offset, count;
        bool copy, sequential, datagram;
    };
    explicit sendfile_awaiter(const args& a) : op_awaiter(a.op, ops::sendfile) {
        st_.file = a.file;
        st_.offset = a.offset;
        st_.count = a.count;
        st_.copy = a.copy;
        st_.datagram = a.datagram;
        st_.sequential = a.sequential;
        op().buf = &st_;
        op().len = std::size_t(a.count);
    }
    std::size_t await_resume() {
        int res = settle();
        if (!st_.sequential) ::lseek(st_.file, off_t(st_.offset + op().done), SEEK_SET);
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
    bool regular = S_ISREG(st.st_mode);
    bool sequential = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
    if (sequential && offset != 0)
        throw std::invalid_argument(of + ": offset " + std::to_string(offset) + " in a pipe or socket, which cannot seek");
    if (!regular) {
        int flags = ::fcntl(file, F_GETFL);
        if (flags >= 0 && (flags & O_NONBLOCK))
            throw std::invalid_argument(of + ": non-blocking and not a regular file (sendfile cannot wait for it)");
    }
    return {op, file, std::uint64_t(offset), count ? std::uint64_t(*count) : UINT64_MAX, !regular || type != SOCK_STREAM,
            sequential, type != SOCK_STREAM};
}

} // namespace cosock::detail

#endif
