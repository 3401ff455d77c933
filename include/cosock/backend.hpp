// cosock::backend: which mechanism a scheduler waits with, chosen at run
// time. `automatic` takes the best that works here (io_uring, epoll, poll,
// select, in that order), unless the COSOCK_BACKEND environment variable
// names one; a backend the kernel refuses is skipped, and asking for it by
// name says why.
#pragma once

#include <cosock/detail/os_category.hpp>

#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <cosock/detail/io_backend.hpp>
#include <cosock/detail/platform.hpp>
#if COSOCK_HAS_EPOLL
#include <cosock/detail/epoll_backend.hpp>
#endif
#include <cosock/detail/poll_backend.hpp>
#include <cosock/detail/select_backend.hpp>
#include <cosock/detail/uring_backend.hpp>

namespace cosock {

/// Which readiness or completion mechanism a scheduler uses.
enum class backend {
    automatic, ///< the best one that works here; COSOCK_BACKEND overrides it
    select,    ///< portable; descriptors below FD_SETSIZE (1024) only
    poll,      ///< no descriptor limit; each wait costs O(descriptors)
    epoll,     ///< Linux readiness: each descriptor registered once, O(ready) waits
    io_uring,  ///< Linux completions: fewest system calls; needs liburing and a kernel that allows it
};

/// The name used by COSOCK_BACKEND and backend_name(): "select", "poll", …
inline std::string_view to_string(backend b) noexcept {
    switch (b) {
    case backend::automatic:
        return "automatic";
    case backend::select:
        return "select";
    case backend::poll:
        return "poll";
    case backend::epoll:
        return "epoll";
    case backend::io_uring:
        return "io_uring";
    }
    return "?";
}

/// Parses a backend name; throws std::invalid_argument naming a bad one.
inline backend parse_backend(std::string_view name) {
    for (backend b : {backend::automatic, backend::select, backend::poll, backend::epoll, backend::io_uring})
        if (name == to_string(b)) return b;
    throw std::invalid_argument("unknown cosock backend '" + std::string(name) +
                                "' (expected automatic, select, poll, epoll or io_uring)");
}

namespace detail {
/// Creates exactly the backend asked for; throws std::system_error saying why
/// when it cannot work here.
inline std::unique_ptr<detail::io_backend> make_backend(cosock::backend which) {
    switch (which) {
    case cosock::backend::select:
        return std::make_unique<select_backend>();
    case cosock::backend::poll:
        return std::make_unique<poll_backend>();
    case cosock::backend::epoll:
#if COSOCK_HAS_EPOLL
        return std::make_unique<epoll_backend>();
#else
        throw std::system_error(ENOSYS, detail::os_category(), "epoll backend unavailable: epoll is Linux's (use poll)");
#endif
    case cosock::backend::io_uring:
#ifdef COSOCK_HAS_LIBURING
        return std::make_unique<uring_backend>();
#elif COSOCK_WINDOWS
        throw std::system_error(ENOSYS, detail::os_category(), "io_uring backend unavailable: io_uring is Linux's (use poll)");
#else
        throw std::system_error(ENOSYS, detail::os_category(),
                                "io_uring backend unavailable: cosock was built without liburing "
                                "(define COSOCK_HAS_LIBURING and link -luring, or use the Meson dependency)");
#endif
    case cosock::backend::automatic:
        break;
    }
    throw std::invalid_argument("cosock: no backend for value " + std::to_string(int(which)));
}

/// The backend `which` stands for: COSOCK_BACKEND or, failing that, every
/// backend from the best down until one initialises.
inline std::unique_ptr<detail::io_backend> choose_backend(cosock::backend which, cosock::backend& chosen) {
    if (which == cosock::backend::automatic) {
        const char* env = std::getenv("COSOCK_BACKEND");
        if (env && *env) {
            try {
                which = parse_backend(env);
            } catch (const std::invalid_argument& e) {
                throw std::invalid_argument(std::string("COSOCK_BACKEND: ") + e.what());
            }
        }
    }
    if (which != cosock::backend::automatic) {
        chosen = which;
        return make_backend(which);
    }
    for (cosock::backend b : {cosock::backend::io_uring, cosock::backend::epoll, cosock::backend::poll}) {
        try {
            chosen = b;
            return make_backend(b);
        } catch (const std::system_error&) { // refused here: try the next one
        }
    }
    chosen = cosock::backend::select;
    return make_backend(chosen);
}
} // namespace detail

/// Why `b` cannot run here, or an empty string when it can (it is created and
/// destroyed to find out). `automatic` always can.
inline std::string backend_unavailable(backend b) {
    if (b == backend::automatic) return {};
    try {
        detail::make_backend(b);
        return {};
    } catch (const std::exception& e) {
        return e.what();
    }
}

} // namespace cosock
