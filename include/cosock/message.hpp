// What sendmsg and recvmsg carry besides the bytes: control messages
// (Python's ancdata items) and the results of recvmsg and recvmsg_into.
// The helpers in detail build the iovec list of a scatter/gather call and the
// control buffer of a send, and read a received one back.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <cosock/detail/platform.hpp>

#include <cosock/address.hpp>
#include <cosock/buffer.hpp>
#include <cosock/detail/sys.hpp>

namespace cosock {

/// One control message, Python's (cmsg_level, cmsg_type, cmsg_data): e.g.
/// {sol_socket, scm_rights, bytes of ints} to pass descriptors (send_fds in
/// cosock/unix.hpp does that for you).
struct ancillary {
    int level = 0;
    int type = 0;
    std::string data;
    friend bool operator==(const ancillary&, const ancillary&) = default;
};

/// What `co_await sock.recvmsg(bufsize, ancbufsize, flags)` gives, Python's
/// (data, ancdata, msg_flags, address). msg_flags has msg_trunc when a
/// datagram was longer than bufsize, msg_ctrunc when the control messages
/// did not fit in ancbufsize (the last item then holds what fitted).
struct recvmsg_result {
    std::string data;
    std::vector<ancillary> ancdata;
    int msg_flags = 0;
    cosock::address address;
};

/// What `co_await sock.recvmsg_into(buffers, ancbufsize, flags)` gives,
/// Python's (nbytes, ancdata, msg_flags, address).
struct recvmsg_into_result {
    std::size_t nbytes = 0;
    std::vector<ancillary> ancdata;
    int msg_flags = 0;
    cosock::address address;
};

namespace detail {
/// An element of a buffer range whose bytes outlive the range's iteration:
/// a reference to a buffer, or a view (std::span, std::string_view). A
/// range that makes its buffers as it goes (a transform to std::string)
/// would hand the kernel bytes already freed.
template <class E>
concept lasting_buffer = std::is_lvalue_reference_v<E> || std::ranges::borrowed_range<E>;
} // namespace detail

/// A range of buffers for a scatter/gather call: std::vector<std::string>,
/// std::array<std::span<std::byte>, 2>, … (each element a const_buffer that
/// the range holds or views, not one it makes while iterated).
template <class R>
concept buffer_sequence = std::ranges::forward_range<R> && const_buffer<std::ranges::range_reference_t<R>> &&
    detail::lasting_buffer<std::ranges::range_reference_t<R>>;

/// A range of writable buffers, for recvmsg_into.
template <class R>
concept mutable_buffer_sequence = std::ranges::forward_range<R> &&
    mutable_buffer<std::ranges::range_reference_t<R>> && detail::lasting_buffer<std::ranges::range_reference_t<R>>;

#if !COSOCK_WINDOWS
/// Python's socket.CMSG_LEN: a control message's length for `n` data bytes.
inline constexpr std::size_t cmsg_len(std::size_t n) noexcept { return CMSG_LEN(n); }
/// Python's socket.CMSG_SPACE: the room a control message of `n` data bytes
/// takes in ancbufsize, padding included.
inline constexpr std::size_t cmsg_space(std::size_t n) noexcept { return CMSG_SPACE(n); }
#endif

namespace detail {

/// The iovec list of one scatter/gather call. Up to eight buffers live
/// inline, so a call over a few buffers does not allocate; more go to the heap.
class iov_list {
  public:
    iov_list() = default;
    template <class R>
        requires(!std::same_as<std::remove_cvref_t<R>, iov_list>)
    explicit iov_list(R&& buffers) {
        std::size_t n = 0;
        if constexpr (std::ranges::sized_range<R>)
            n = std::size_t(std::ranges::size(buffers));
        else
            n = std::size_t(std::ranges::distance(buffers));
        if (n > inline_.size()) heap_.resize(n);
        iovec* out = n > inline_.size() ? heap_.data() : inline_.data();
        for (auto&& b : buffers) {
            out[size_] = {const_cast<void*>(static_cast<const void*>(std::ranges::data(b))),
                          std::size_t(std::ranges::size(b))};
            total_ += out[size_].iov_len;
            ++size_;
        }
    }
    iov_list(const iov_list& o) : inline_(o.inline_), heap_(o.heap_), size_(o.size_), total_(o.total_) {}
    iov_list& operator=(const iov_list&) = delete;

    iovec* data() noexcept { return heap_.empty() ? inline_.data() : heap_.data(); }
    std::size_t size() const noexcept { return size_; }
    /// The bytes of all the buffers.
    std::size_t total() const noexcept { return total_; }

  private:
    std::array<iovec, 8> inline_{};
    std::vector<iovec> heap_;
    std::size_t size_ = 0;
    std::size_t total_ = 0;
};

/// A control buffer, aligned for cmsghdr.
using control_buffer = std::vector<std::max_align_t>;

inline control_buffer control_room(std::size_t bytes) {
    return control_buffer((bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t));
}

#if !COSOCK_WINDOWS
/// The control buffer of a send carrying `items`, and its length in bytes
/// (0: none). Throws std::invalid_argument naming an item that cannot be sent.
inline std::pair<control_buffer, std::size_t> build_control(std::span<const ancillary> items) {
    std::size_t bytes = 0;
    for (const ancillary& a : items) bytes += CMSG_SPACE(a.data.size());
    if (bytes == 0) return {};
    control_buffer room = control_room(bytes);
    msghdr m{};
    m.msg_control = room.data();
    m.msg_controllen = bytes;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    for (const ancillary& a : items) {
        c->cmsg_level = a.level;
        c->cmsg_type = a.type;
        c->cmsg_len = CMSG_LEN(a.data.size());
        if (!a.data.empty()) std::memcpy(CMSG_DATA(c), a.data.data(), a.data.size());
        c = CMSG_NXTHDR(&m, c);
    }
    return {std::move(room), bytes};
}

/// Calls `fn(level, type, data, size)` for each control message the kernel
/// left in `m` (msg_controllen as it returned it); a message cut short by
/// MSG_CTRUNC is given with the bytes that fit.
template <class Fn>
void each_control(const msghdr& m, Fn fn) {
    if (!m.msg_control || m.msg_controllen < sizeof(cmsghdr)) return;
    const auto* end = static_cast<const unsigned char*>(m.msg_control) + m.msg_controllen;
    for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&m)); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&m), c)) {
        const unsigned char* data = CMSG_DATA(c);
        if (c->cmsg_len < CMSG_LEN(0) || data > end) break;
        std::size_t size = std::size_t(c->cmsg_len) - CMSG_LEN(0);
        if (size > std::size_t(end - data)) size = std::size_t(end - data);
        fn(c->cmsg_level, c->cmsg_type, data, size);
    }
}

/// The descriptors SCM_RIGHTS messages in `m` hold, each passed to `fn(fd)`.
template <class Fn>
void each_passed_fd(const msghdr& m, Fn fn) {
    each_control(m, [&](int level, int type, const unsigned char* data, std::size_t size) {
        if (level != SOL_SOCKET || type != SCM_RIGHTS) return;
        for (std::size_t i = 0; i + sizeof(int) <= size; i += sizeof(int)) {
            int fd;
            std::memcpy(&fd, data + i, sizeof fd);
            fn(fd);
        }
    });
}
#endif

} // namespace detail

} // namespace cosock
