// What the operations in this folder share: liburing when cosock is built
// with it, and the dead ends an op can meet after a readiness report.
// Each file here is one operation: its op_type, which the backends run (see
// io_op.hpp), and for a socket operation its awaiter, which socket.hpp's
// methods return inside a cosock::operation. Adding an operation adds a file
// here and a method on the socket.
#pragma once

#include <cerrno>
#include <cosock/detail/platform.hpp>

#include <cosock/detail/io_op.hpp>
#include <cosock/detail/sys.hpp>

#ifdef COSOCK_HAS_LIBURING
#include <liburing.h>
#endif

namespace cosock::detail::ops {

/// A recv told EAGAIN although its descriptor was reported readable: on a
/// socket whose read side is shut down (a datagram socket after
/// shutdown(SHUT_RD) is readable for ever with nothing to read) it ends with
/// 0, as a blocking recv does. Otherwise the wake-up was spurious.
inline bool read_side_shut(const io_op& op, int& res) noexcept {
    if (!sys::read_side_shut(op.fd)) return false;
    res = 0;
    return true;
}

/// A send told EAGAIN although its descriptor was reported writable: on a
/// datagram socket the kernel calls writable while the receiver has no room
/// (an unconnected AF_UNIX datagram socket), it fails with EAGAIN, as a
/// non-blocking send does: datagrams may be dropped. A stream waits again.
inline bool datagram_without_room(const io_op& op, int& res) noexcept {
    int type = 0;
    socklen_t len = sizeof type;
    if (sys::getsockopt(op.fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM) return false;
    res = -EAGAIN;
    return true;
}

} // namespace cosock::detail::ops
