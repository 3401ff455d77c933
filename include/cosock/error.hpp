// Errors are exceptions, as in Python: std::system_error carrying the errno in
// std::system_category() and the name of the failed operation. End of stream
// is not an error (recv yields 0).
#pragma once

#include <string>
#include <system_error>

namespace cosock {

/// The exception for a failed operation: `res` is -errno (a backend result),
/// `what` names the operation ("recv", "connect to 127.0.0.1:80", …).
inline std::system_error make_error(int res, const std::string& what) {
    return std::system_error(-res, std::system_category(), what);
}

namespace detail {
/// Returns `res` when it is not an error; throws make_error(res, what) otherwise.
inline int check(int res, const char* what) {
    if (res < 0) throw make_error(res, what);
    return res;
}
} // namespace detail

} // namespace cosock
