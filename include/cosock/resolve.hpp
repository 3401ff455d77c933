// cosock::getaddrinfo: Python's socket.getaddrinfo, awaitable.
//
// A name is looked up on a helper thread (detail/to_thread.hpp), so the loop
// never blocks on DNS, /etc/hosts or NSS; numeric hosts with numeric ports are
// converted at once, on the loop thread, with no thread at all.
#pragma once

#include <cosock/detail/os_category.hpp>

#include <cosock/detail/platform.hpp>
#include <cosock/detail/sys.hpp>

#include <atomic>
#include <cerrno>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <cosock/address.hpp>
#include <cosock/constants.hpp>
#include <cosock/detail/to_thread.hpp>
#include <cosock/task.hpp>

namespace cosock {

/// getaddrinfo flags, as Python's socket.AI_*.
inline constexpr int ai_passive = AI_PASSIVE;
inline constexpr int ai_canonname = AI_CANONNAME;
inline constexpr int ai_numerichost = AI_NUMERICHOST;
inline constexpr int ai_numericserv = AI_NUMERICSERV;
inline constexpr int ai_addrconfig = AI_ADDRCONFIG;
inline constexpr int ai_v4mapped = AI_V4MAPPED;
inline constexpr int ai_all = AI_ALL;

/// getnameinfo flags, as Python's socket.NI_*.
inline constexpr int ni_numerichost = NI_NUMERICHOST;
inline constexpr int ni_numericserv = NI_NUMERICSERV;
inline constexpr int ni_namereqd = NI_NAMEREQD;
inline constexpr int ni_nofqdn = NI_NOFQDN;
inline constexpr int ni_dgram = NI_DGRAM;

/// getaddrinfo error codes, as Python's socket.EAI_* (negative on Linux).
inline constexpr int eai_again = EAI_AGAIN;
inline constexpr int eai_badflags = EAI_BADFLAGS;
inline constexpr int eai_fail = EAI_FAIL;
inline constexpr int eai_family = EAI_FAMILY;
inline constexpr int eai_memory = EAI_MEMORY;
inline constexpr int eai_noname = EAI_NONAME;
inline constexpr int eai_service = EAI_SERVICE;
inline constexpr int eai_socktype = EAI_SOCKTYPE;

/// One result of getaddrinfo: Python's (family, type, proto, canonname,
/// sockaddr) tuple, so `auto [family, type, proto, canonname, addr] = entry;`.
struct addrinfo_entry {
    int family;
    int type;
    int proto;
    std::string canonname; ///< set on the first entry when ai_canonname was asked; "" otherwise
    cosock::address address;
};

namespace detail {
class gai_error_category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int ev) const override { return sys::gai_message(ev); }
};
} // namespace detail

/// The category of getaddrinfo's EAI_* codes; message() is gai_strerror's text
/// (worded the same on Windows).
inline const std::error_category& gai_category() noexcept {
    static const detail::gai_error_category category;
    return category;
}

/// Python's socket.gaierror: a name or service could not be resolved.
/// code() is {EAI_* value, gai_category()}; what() names the host and port
/// and ends with gai_strerror's text, e.g.
/// `getaddrinfo("db.invalid", "80"): Name or service not known`.
class gaierror : public std::system_error {
  public:
    gaierror(int eai, const std::string& what) : std::system_error(eai, gai_category(), what) {}
};

namespace detail {

using getaddrinfo_fn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

/// The blocking call the helper thread makes. Tests replace it to hold a
/// lookup open for as long as they need; numeric lookups never use it.
inline std::atomic<getaddrinfo_fn> blocking_getaddrinfo{&::getaddrinfo};

// Text from the caller, fit for an error message: bounded, control bytes shown as '?'.
inline std::string quote_text(std::string_view text) {
    std::string out = "\"";
    for (char c : text.substr(0, 256)) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
    return out + (text.size() > 256 ? "...\"" : "\"");
}

inline bool all_digits(std::string_view s) noexcept {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

/// A port number as getaddrinfo's service text; invalid_argument outside 0..65535.
inline std::string port_text(int port, const std::string& who) {
    if (port < 0 || port > 65535)
        throw std::invalid_argument(who + ": port " + std::to_string(port) + " is out of range 0..65535");
    return std::to_string(port);
}

struct gai_request {
    std::string host; // "" stands for Python's None
    std::string port; // likewise
    int family = AF_UNSPEC;
    int type = 0;
    int proto = 0;
    int flags = 0;
    std::string what() const { return "getaddrinfo(" + quote_text(host) + ", " + quote_text(port) + ")"; }
};

inline gai_request make_request(std::string_view host, std::string_view port, int family, int type, int proto,
                                int flags) {
    gai_request r{std::string(host), std::string(port), family, type, proto, flags};
    if (host.find('\0') != std::string_view::npos)
        throw std::invalid_argument(r.what() + ": the host contains a NUL byte");
    if (port.find('\0') != std::string_view::npos)
        throw std::invalid_argument(r.what() + ": the port contains a NUL byte");
    // glibc would quietly take 70000 as 70000 % 65536.
    if (all_digits(port)) {
        unsigned long value = 0;
        for (char c : port)
            if ((value = value * 10 + static_cast<unsigned long>(c - '0')) > 65535)
                throw std::invalid_argument(r.what() + ": port " + quote_text(port) + " is out of range 0..65535");
    }
    return r;
}

struct gai_answer {
    int rc = 0;
    int sys_errno = 0; // when rc is EAI_SYSTEM
    std::vector<addrinfo_entry> entries;
};

inline gai_answer call_getaddrinfo(const gai_request& r, int extra_flags, getaddrinfo_fn fn) {
    addrinfo hints{};
    hints.ai_family = r.family;
    hints.ai_socktype = r.type;
    hints.ai_protocol = r.proto;
    hints.ai_flags = r.flags | extra_flags;
    addrinfo* list = nullptr;
    gai_answer a;
    if (int e = detail::sys::start_sockets(); e < 0) {
        a.rc = EAI_SYSTEM;
        a.sys_errno = -e;
        return a;
    }
    a.rc = fn(r.host.empty() ? nullptr : r.host.c_str(), r.port.empty() ? nullptr : r.port.c_str(), &hints, &list);
    if (a.rc == EAI_SYSTEM) a.sys_errno = errno;
    if (a.rc != 0) return a;
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(list, [](addrinfo* p) { ::freeaddrinfo(p); });
    for (const addrinfo* ai = list; ai; ai = ai->ai_next)
        a.entries.push_back({ai->ai_family, ai->ai_socktype, ai->ai_protocol, ai->ai_canonname ? ai->ai_canonname : "",
                             address::from_raw(ai->ai_addr, socklen_t(ai->ai_addrlen))});
    return a;
}

// Numeric host text and a numeric (or no) port need neither DNS nor NSS:
// glibc converts them without blocking. The answer, or nullopt for a name.
inline std::optional<gai_answer> resolve_numeric(const gai_request& r) {
    if (!r.port.empty() && !all_digits(r.port) && !(r.flags & AI_NUMERICSERV)) return std::nullopt;
    gai_answer a = call_getaddrinfo(r, AI_NUMERICHOST | AI_NUMERICSERV, &::getaddrinfo);
    if (a.rc == EAI_NONAME && !r.host.empty() && !(r.flags & AI_NUMERICHOST)) return std::nullopt;
    return a;
}

inline std::vector<addrinfo_entry> entries_or_throw(gai_answer a, const gai_request& r) {
    // Python raises OSError with the errno for EAI_SYSTEM.
    if (a.rc == EAI_SYSTEM && a.sys_errno != 0) throw std::system_error(a.sys_errno, detail::os_category(), r.what());
    if (a.rc != 0) throw gaierror(a.rc, r.what());
    return std::move(a.entries);
}

template <int = 0>
task<std::vector<addrinfo_entry>> resolve(gai_request r) {
    if (std::optional<gai_answer> now = resolve_numeric(r)) co_return entries_or_throw(std::move(*now), r);
    // Named, and awaited as an lvalue (see GCC before 13 in task.hpp).
    auto lookup = to_thread([r] { return call_getaddrinfo(r, 0, blocking_getaddrinfo.load()); }, "getaddrinfo");
    gai_answer later = co_await lookup;
    co_return entries_or_throw(std::move(later), r);
}

/// What getnameinfo found: the host and the service, or the EAI_* code.
struct name_answer {
    int rc = 0;
    int sys_errno = 0;
    std::string host, port;
};

inline name_answer call_getnameinfo(const address& a, int flags) {
    char host[1025], port[32]; // glibc's NI_MAXHOST, NI_MAXSERV
    name_answer r;
    r.rc = ::getnameinfo(a.data(), a.size(), host, sizeof host, port, sizeof port, flags);
    if (r.rc == EAI_SYSTEM) r.sys_errno = errno;
    if (r.rc == 0) {
        r.host = host;
        r.port = port;
    }
    return r;
}

template <int = 0>
task<std::pair<std::string, std::string>> lookup_name(address a, int flags) {
    name_answer answer;
    if ((flags & NI_NUMERICHOST) && (flags & NI_NUMERICSERV)) {
        answer = call_getnameinfo(a, flags); // nothing to look up
    } else {
        auto lookup = to_thread([a, flags] { return call_getnameinfo(a, flags); }, "getnameinfo");
        answer = co_await lookup;
    }
    const std::string what = "getnameinfo(" + a.to_string() + ")";
    if (answer.rc == EAI_SYSTEM && answer.sys_errno != 0) throw std::system_error(answer.sys_errno, os_category(), what);
    if (answer.rc != 0) throw gaierror(answer.rc, what);
    co_return std::pair<std::string, std::string>(std::move(answer.host), std::move(answer.port));
}

} // namespace detail

/// `co_await getnameinfo(address, flags)` → {host, port}, as Python's
/// socket.getnameinfo: the name of an IP address and of its port's service
/// ("localhost", "http"), or their numbers with ni_numerichost and
/// ni_numericserv. Looked up on a helper thread, as getaddrinfo is (with
/// both numeric flags, at once). An address that is not AF_INET or AF_INET6
/// is an std::invalid_argument; the co_await throws gaierror when the lookup
/// fails (ni_namereqd and no name, bad flags).
template <int = 0>
task<std::pair<std::string, std::string>> getnameinfo(const address& a, int flags = 0) {
    if (a.family() != AF_INET && a.family() != AF_INET6)
        throw std::invalid_argument("getnameinfo: " + detail::quote_text(a.to_string()) + " is not an IP address");
    return detail::lookup_name(a, flags);
}

/// Python's socket.gethostname(): this machine's host name. Throws
/// std::system_error on failure.
inline std::string gethostname() {
    char name[256];
    detail::check(detail::sys::gethostname(name, sizeof name), "gethostname");
    return name;
}

/// `co_await getaddrinfo(host, port, family, type, proto, flags)` → every
/// address for `host`, as Python's socket.getaddrinfo. An empty host or port
/// stands for Python's None (with ai_passive, an empty host is the wildcard
/// address; without it, the loopback). The port is a number ("8080") or a
/// service name ("http").
///
/// A name is looked up on a helper thread; the task's stop token (or
/// with_timeout) resumes the caller at once with cancelled_error (or
/// timeout_error) while the lookup finishes unobserved. Numeric hosts with
/// numeric ports resolve at once, without a thread.
///
/// Throws std::invalid_argument at the call for a NUL byte in host or port or
/// a numeric port above 65535; the co_await throws gaierror when the name or
/// service cannot be resolved (std::system_error for EAI_SYSTEM, with errno).
template <int = 0>
task<std::vector<addrinfo_entry>> getaddrinfo(std::string_view host, std::string_view port,
                                                     int family = af_unspec, int type = 0, int proto = 0,
                                                     int flags = 0) {
    return detail::resolve(detail::make_request(host, port, family, type, proto, flags));
}

/// getaddrinfo with a port number; std::invalid_argument outside 0..65535.
template <int = 0>
task<std::vector<addrinfo_entry>> getaddrinfo(std::string_view host, int port, int family = af_unspec,
                                                     int type = 0, int proto = 0, int flags = 0) {
    return getaddrinfo(host, detail::port_text(port, "getaddrinfo(" + detail::quote_text(host) + ")"), family, type,
                       proto, flags);
}

} // namespace cosock
