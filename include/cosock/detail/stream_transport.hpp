// The seam between a file object's buffering and the stream beneath it when
// that stream is not the socket's own descriptor (a TLS layer). A file object
// made by socket::makefile() has none and calls recv/send itself; one made by
// ssl_socket::makefile() hands each receive and send to its transport.
//
// A transport keeps whatever it holds (decrypted bytes, a half-written record)
// in itself, never in a coroutine frame, so an operation abandoned part-way
// loses nothing, as for the plain path.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include <cosock/detail/io_awaiter.hpp>
#include <cosock/task.hpp>

namespace cosock::detail {

class stream_transport {
  public:
    /// One receive into `room` (not empty): → bytes received, 0 at end of
    /// stream. Waits as needed, bounded as a whole by the socket's timeout;
    /// a wait registers itself in `*slot` so the owner can end it. Throws as
    /// the file object's operations do, naming `op`.
    virtual task<std::size_t> receive(std::span<char> room, const char* op, io_awaiter** slot) = 0;
    /// Sends (*buf)[*pos, size), advancing *pos as each part is taken, so
    /// that the caller's record is exact however the task ends.
    virtual task<> send(std::string* buf, std::size_t* pos, const char* op, io_awaiter** slot) = 0;
    /// A destructor's last effort: sends what can go without waiting.
    virtual void send_without_waiting(std::string& buf, std::size_t& pos) noexcept = 0;

  protected:
    ~stream_transport() = default;
};

} // namespace cosock::detail
