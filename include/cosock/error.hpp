// Errors are exceptions, as in Python: std::system_error carrying the errno in
// std::system_category() (on Windows, cosock's own errno category) and the
// name of the failed operation. End of stream is not an error (recv yields 0).
#pragma once

#include <cosock/detail/os_category.hpp>

#include <cerrno>
#include <string>
#include <system_error>

#include <cosock/detail/os_category.hpp>

namespace cosock {

/// An operation did not finish before its deadline (a socket timeout or
/// with_timeout), or the kernel reported ETIMEDOUT: Python's socket.timeout /
/// TimeoutError. code() is errc::timed_out.
class timeout_error : public std::system_error {
  public:
    explicit timeout_error(const std::string& what)
        : std::system_error(detail::os_error(std::errc::timed_out), what) {}
};

/// The operation was cancelled by a stop request: the task's stop token, and so
/// with_timeout (which turns it into timeout_error for its caller) and when_any
/// (whose losers it ends). Python's asyncio.CancelledError, which is not an
/// Exception for the same reason: it derives from std::exception, not from
/// std::system_error, so `catch (const std::system_error&)` does not swallow
/// it. Catch it only to clean up, then let it go on.
class cancelled_error : public std::exception {
  public:
    /// `what` names the operation ("recv", "sleep", …).
    explicit cancelled_error(const std::string& what) : what_(what + ": cancelled") {}
    const char* what() const noexcept override { return what_.c_str(); }

  private:
    std::string what_;
};

/// Throws the exception for a failed operation: `res` is -errno (a backend
/// result), `what` names the operation ("recv", "connect to 127.0.0.1:80", …).
/// ETIMEDOUT becomes timeout_error; everything else a std::system_error.
[[noreturn]] inline void throw_error(int res, const std::string& what) {
    if (res == -ETIMEDOUT) throw timeout_error(what + ": timed out");
    throw std::system_error(-res, detail::os_category(), what);
}

namespace detail {
/// Returns `res` when it is not an error; throws throw_error(res, what) otherwise.
inline int check(int res, const char* what) {
    if (res < 0) throw_error(res, what);
    return res;
}
} // namespace detail

} // namespace cosock
