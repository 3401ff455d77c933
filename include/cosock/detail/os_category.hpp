// The error category of the errno values cosock reports. On POSIX it is
// std::system_category(). On Windows the system's WSA codes are turned into
// errno values at the system-call seam (sys_windows.hpp), and this category
// names them and compares them equal to std::errc: mingw's system_category()
// reads every value as a Windows error code.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

#if defined(_WIN32)
#include <cstring>
#endif

namespace cosock::detail {

#if defined(_WIN32)
class errno_category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "cosock"; }
    std::error_condition default_error_condition(int ev) const noexcept override {
        return {ev, std::generic_category()};
    }
    std::string message(int ev) const override {
        // The C library of Windows names only the errno values below 100.
        switch (ev) {
        case EADDRINUSE: return "Address already in use";
        case EADDRNOTAVAIL: return "Cannot assign requested address";
        case EAFNOSUPPORT: return "Address family not supported by protocol";
        case EALREADY: return "Operation already in progress";
        case ECANCELED: return "Operation canceled";
        case ECONNABORTED: return "Software caused connection abort";
        case ECONNREFUSED: return "Connection refused";
        case ECONNRESET: return "Connection reset by peer";
        case EDESTADDRREQ: return "Destination address required";
        case EHOSTUNREACH: return "No route to host";
        case EINPROGRESS: return "Operation now in progress";
        case EISCONN: return "Transport endpoint is already connected";
        case EMSGSIZE: return "Message too long";
        case ENETDOWN: return "Network is down";
        case ENETRESET: return "Network dropped connection on reset";
        case ENETUNREACH: return "Network is unreachable";
        case ENOBUFS: return "No buffer space available";
        case ENOPROTOOPT: return "Protocol not available";
        case ENOTCONN: return "Transport endpoint is not connected";
        case ENOTSOCK: return "Socket operation on non-socket";
        case EOPNOTSUPP: return "Operation not supported";
        case EOVERFLOW: return "Value too large for defined data type";
        case EPROTONOSUPPORT: return "Protocol not supported";
        case EPROTOTYPE: return "Protocol wrong type for socket";
        case ETIMEDOUT: return "Connection timed out";
        case EWOULDBLOCK: return "Resource temporarily unavailable";
        default: return std::strerror(ev);
        }
    }
};
inline const std::error_category& os_category() noexcept {
    static const errno_category c;
    return c;
}
#else
inline const std::error_category& os_category() noexcept { return std::system_category(); }
#endif

/// An error cosock reports itself, in the category of the system's own:
/// named on every platform (mingw's generic_category() says "Unknown error"
/// for most socket errors) and equal to std::errc `e`.
inline std::error_code os_error(std::errc e) noexcept { return {int(e), os_category()}; }

} // namespace cosock::detail
