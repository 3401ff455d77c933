// Python's socket.create_connection and socket.create_server: a connected
// client socket from a (host, port) pair, and a listening server socket from
// an address, with the options servers usually want.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <cosock/address.hpp>
#include <cosock/constants.hpp>
#include <cosock/error.hpp>
#include <cosock/resolve.hpp>
#include <cosock/scheduler.hpp>
#include <cosock/socket.hpp>
#include <cosock/task.hpp>
#include <cosock/time.hpp>

namespace cosock {

/// Python's (host, port) pair for create_connection: the host is a name or
/// numeric IP text ("" is the loopback), the port a number or a service name.
/// `create_connection({"localhost", 8080})`, `{"example.org", "https"}`, or any
/// IP cosock::address. Throws std::invalid_argument for a port number outside
/// 0..65535 or an address that is not AF_INET or AF_INET6.
struct host_port {
    std::string host;
    std::string port;

    host_port(std::string_view name, int number)
        : host(name), port(detail::port_text(number, "host_port(" + detail::quote_text(name) + ")")) {}
    host_port(std::string_view name, std::string_view service) : host(name), port(service) {}
    host_port(const address& a) {
        if (a.family() != af_inet && a.family() != af_inet6)
            throw std::invalid_argument("host_port: " + detail::quote_text(a.to_string()) +
                                        " is not an IP address with a port");
        host = a.host();
        port = std::to_string(a.port());
    }

    /// "localhost:80", "[::1]:80".
    std::string to_string() const {
        return (host.find(':') == std::string::npos ? host : "[" + host + "]") + ":" + port;
    }
};

/// What create_connection(..., all_errors = true) throws when every address
/// fails, Python 3.11's ExceptionGroup: each address tried and its error, in
/// order. A std::system_error carrying the last error's code, so a handler of
/// connection errors catches it as it catches the plain one.
class connection_errors : public std::system_error {
  public:
    /// One address tried and the exception its connect ended with.
    struct attempt {
        cosock::address address;
        std::exception_ptr error;
    };
    connection_errors(std::vector<attempt> attempts, std::error_code last, const std::string& what)
        : std::system_error(last, what), attempts_(std::move(attempts)) {}
    const std::vector<attempt>& attempts() const noexcept { return attempts_; }

  private:
    std::vector<attempt> attempts_;
};

namespace detail {

inline std::string family_name(int family) {
    switch (family) {
    case AF_INET:
        return "AF_INET";
    case AF_INET6:
        return "AF_INET6";
    case AF_UNIX:
        return "AF_UNIX";
    }
    return "family " + std::to_string(family);
}

// Rethrows `last` (a std::system_error) saying how many addresses were tried;
// a timeout stays a timeout_error.
[[noreturn]] inline void rethrow_last_of(std::exception_ptr last, std::size_t tried, const std::string& target) {
    try {
        std::rethrow_exception(last);
    } catch (const std::system_error& e) {
        std::string what = e.what();
        const std::string reason = ": " + e.code().message(); // system_error appends it again
        if (what.size() >= reason.size() && what.compare(what.size() - reason.size(), reason.size(), reason) == 0)
            what.resize(what.size() - reason.size());
        what += " (the last of " + std::to_string(tried) + " addresses tried for " + target + ")";
        if (dynamic_cast<const timeout_error*>(&e)) throw timeout_error(what);
        throw std::system_error(e.code(), what);
    }
}

// connection_errors for `attempts`, each error's text in its message.
[[noreturn]] inline void throw_all_of(std::vector<connection_errors::attempt> attempts, const std::string& target) {
    std::string what = "create_connection to " + target + ": " + std::to_string(attempts.size()) +
                       (attempts.size() == 1 ? " address" : " addresses") + " failed";
    std::error_code last;
    for (const connection_errors::attempt& a : attempts) {
        try {
            std::rethrow_exception(a.error);
        } catch (const std::system_error& e) {
            what += std::string(&a == &attempts.front() ? ": " : "; ") + e.what();
            last = e.code();
        }
    }
    // std::system_error appends the last error's text: the last attempt's
    // message already ends with it.
    const std::string reason = ": " + last.message();
    if (what.size() >= reason.size() && what.compare(what.size() - reason.size(), reason.size(), reason) == 0)
        what.resize(what.size() - reason.size());
    throw connection_errors(std::move(attempts), last, what);
}

/// create_connection once the candidates are known: tries each in turn and
/// returns the first socket that connects. Cancellation (cancelled_error, not a
/// std::system_error) ends the search at once; a std::system_error moves on to
/// the next. With `all_errors`, every address's error is kept and thrown as
/// connection_errors.
template <int = 0>
task<socket> connect_first(std::vector<addrinfo_entry> candidates,
                                  std::optional<std::chrono::nanoseconds> timeout,
                                  std::optional<address> source_address, std::string target, bool all_errors = false) {
    scheduler& s = running_scheduler("create_connection");
    std::exception_ptr last;
    std::size_t failed = 0;
    std::vector<connection_errors::attempt> attempts;
    for (const addrinfo_entry& c : candidates) {
        try {
            socket sock{s, c.family, c.type, c.proto};
            sock.settimeout(timeout);
            if (source_address) sock.bind(*source_address);
            co_await sock.connect(c.address);
            co_return std::move(sock);
        } catch (const std::system_error&) {
            last = std::current_exception();
            ++failed;
            if (all_errors) attempts.push_back({c.address, last});
        }
    }
    if (!last) throw gaierror(EAI_NONAME, "create_connection to " + target + ": getaddrinfo found no address");
    if (all_errors) throw_all_of(std::move(attempts), target);
    if (failed == 1) std::rethrow_exception(last);
    rethrow_last_of(last, failed, target);
}

} // namespace detail

/// `co_await create_connection({"localhost", 8080}, timeout, source_address)`
/// → a connected TCP socket, as Python's socket.create_connection: resolves
/// the host (getaddrinfo, sock_stream), tries each address in turn, binds to
/// `source_address` first when given, and returns the first socket that
/// connects. `timeout` bounds each attempt and stays on the returned socket
/// (its settimeout); std::nullopt waits for ever.
///
/// When every address fails, throws the last error (a timeout stays a
/// timeout_error); with several addresses its message says how many were
/// tried. Throws gaierror when the name does not resolve, std::invalid_argument
/// for a negative timeout, and cancelled_error (without trying further
/// addresses) when the task's stop token is triggered. With `all_errors`
/// (Python 3.11's keyword), a failure to connect throws connection_errors,
/// which holds every address's error, in the order tried.
template <int = 0>
task<socket> create_connection(host_port to, std::optional<std::chrono::nanoseconds> timeout = std::nullopt,
                                      std::optional<address> source_address = std::nullopt, bool all_errors = false) {
    if (timeout && timeout->count() < 0)
        throw std::invalid_argument("create_connection to " + to.to_string() + ": negative timeout " +
                                    std::to_string(timeout->count()) + "ns");
    std::vector<addrinfo_entry> found = co_await getaddrinfo(to.host, to.port, af_unspec, sock_stream);
    co_return co_await detail::connect_first(std::move(found), timeout, std::move(source_address), to.to_string(),
                                             all_errors);
}

/// The keyword arguments of create_server, in Python's spelling:
/// `create_server(s, {"::", 8080}, {.reuse_port = true, .dualstack_ipv6 = true})`.
struct server_options {
    int family = af_unspec;                    ///< af_unspec: the address's own family
    std::optional<int> backlog = std::nullopt; ///< listen()'s backlog; std::nullopt: its default (SOMAXCONN)
    bool reuse_port = false;     ///< SO_REUSEPORT: several sockets share the port (one scheduler per core)
    bool dualstack_ipv6 = false; ///< an AF_INET6 socket that also accepts IPv4 (IPV6_V6ONLY off)
};

/// True when an IPv6 socket here can accept IPv4 connections too, as
/// Python's socket.has_dualstack_ipv6().
inline bool has_dualstack_ipv6() noexcept {
    int fd = detail::sys::socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) return false;
    int off = 0;
    bool ok = detail::sys::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0;
    detail::sys::close(fd);
    return ok;
}

/// A listening TCP (or AF_UNIX stream) socket bound to `addr`, as Python's
/// socket.create_server: SO_REUSEADDR on, SO_REUSEPORT when asked, and for
/// AF_INET6 IPV6_V6ONLY on unless dualstack_ipv6. Synchronous: it never blocks.
///
/// Throws std::invalid_argument (Python's ValueError) for an empty address, a
/// family that differs from the address's, dualstack_ipv6 without AF_INET6 or
/// where the system cannot do it, or a negative backlog; std::system_error
/// naming the address when the kernel refuses (e.g. the port is in use).
inline socket create_server(scheduler& s, const address& addr, const server_options& options = {}) {
    const std::string who = "create_server(" + detail::quote_text(addr.to_string()) + "): ";
    if (addr.size() == 0) throw std::invalid_argument(who + "empty address");
    const int family = options.family == af_unspec ? addr.family() : options.family;
    if (family != addr.family())
        throw std::invalid_argument(who + "the address is " + detail::family_name(addr.family()) + " but family is " +
                                    detail::family_name(family));
    if (options.dualstack_ipv6 && family != af_inet6)
        throw std::invalid_argument(who + "dualstack_ipv6 requires an AF_INET6 address such as \"::\", not " +
                                    detail::family_name(family));
    if (options.dualstack_ipv6 && !has_dualstack_ipv6())
        throw std::invalid_argument(who + "dualstack_ipv6 is not supported on this system");
    if (options.backlog && *options.backlog < 0)
        throw std::invalid_argument(who + "negative backlog " + std::to_string(*options.backlog));

#ifndef SO_REUSEPORT
    if (options.reuse_port) throw std::invalid_argument(who + "reuse_port: SO_REUSEPORT is not supported on this system");
#endif
    socket sock{s, family, sock_stream};
#if !COSOCK_WINDOWS
    // As Python: set for every family, and a family without a use for it may
    // refuse. Not on Windows, where it would let another socket take the port.
    int one = 1;
    (void)detail::sys::setsockopt(sock.fileno(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#endif
#ifdef SO_REUSEPORT
    if (options.reuse_port) sock.setsockopt(sol_socket, so_reuseport, 1);
#endif
    if (family == af_inet6) sock.setsockopt(ipproto_ipv6, ipv6_v6only, options.dualstack_ipv6 ? 0 : 1);
    sock.bind(addr);
    if (options.backlog)
        sock.listen(*options.backlog);
    else
        sock.listen();
    return sock;
}

} // namespace cosock
