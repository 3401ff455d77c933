// cosock/address.hpp — a socket address as a value: the C++ spelling of
// Python's ("host", port) tuples, Unix paths and Linux abstract names.
// Only numeric IP text is accepted here so that building an address never
// blocks; host names go through cosock::getaddrinfo, off the loop thread.
#pragma once

#include <cosock/detail/platform.hpp>
#include <cosock/detail/sys.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace cosock {

/// A socket address of any family, held by value in a sockaddr_storage.
/// Methods not marked noexcept may throw std::invalid_argument (bad input)
/// or std::logic_error (an accessor asked of the wrong family).
class address {
  public:
    /// The empty address: family AF_UNSPEC, size 0. Never throws.
    address() noexcept = default;

    /// A numeric IPv4 or IPv6 host and a port, like Python's (host, port).
    /// "" is the IPv4 any-address; IPv6 may carry "%scope" (an interface name
    /// or number) and may be written in brackets ("[::1]").
    /// Throws std::invalid_argument for a port outside 0..65535, a host name
    /// (use cosock::getaddrinfo), malformed IP text or an unknown interface.
    address(std::string_view host, int port) {
        const std::string prefix = "cosock::address(" + quote(host) + ", " + std::to_string(port) + "): ";
        if (port < 0 || port > 65535) fail(prefix, "port " + std::to_string(port) + " is out of range 0..65535");
        assign_ip(host, static_cast<std::uint16_t>(port), prefix);
    }

    /// Parses "1.2.3.4:80", "[::1]:80", "[fe80::1%lo]:80", ":80" (IPv4 any),
    /// a Unix path starting with '/' or '.', or "@name" (Linux abstract).
    /// Throws std::invalid_argument quoting the text and saying what is wrong.
    static address parse(std::string_view text) {
        const std::string prefix = "cosock::address::parse(" + quote(text) + "): ";
        if (text.empty()) fail(prefix, "empty address");
        if (text.front() == '/' || text.front() == '.') return make_unix_path(text, prefix);
        if (text.front() == '@') return make_abstract(text.substr(1), prefix);

        std::string_view host;
        std::string_view port;
        if (text.front() == '[') {
            const auto close = text.find(']');
            if (close == std::string_view::npos) fail(prefix, "missing ']' after the IPv6 address");
            host = text.substr(0, close + 1);
            const auto rest = text.substr(close + 1);
            if (rest.empty()) fail(prefix, "missing port (expected [ipv6]:port)");
            if (rest.front() != ':') fail(prefix, "expected ':' and a port after ']'");
            port = rest.substr(1);
        } else {
            const auto colon = text.rfind(':');
            if (colon == std::string_view::npos)
                fail(prefix, "missing port (expected host:port, [ipv6]:port, "
                             "/path, ./path or @name)");
            host = text.substr(0, colon);
            // "::1:80" could be ::1 port 80 or the address ::1:80 with no port.
            if (host.find(':') != std::string_view::npos)
                fail(prefix, "too many ':'; an IPv6 address needs brackets, as in [::1]:80");
            port = text.substr(colon + 1);
        }
        address a;
        a.assign_ip(host, parse_port(port, prefix), prefix);
        return a;
    }

    /// An AF_UNIX filesystem path. Throws std::invalid_argument if the path is
    /// empty, holds a NUL byte or does not fit sun_path with its NUL.
    static address unix_path(std::string_view path) {
        return make_unix_path(path, "cosock::address::unix_path(" + quote(path) + "): ");
    }

    /// A Linux abstract AF_UNIX name, given without the leading '@'.
    /// Throws std::invalid_argument if the name is empty or too long.
    static address abstract(std::string_view name) {
        return make_abstract(name, "cosock::address::abstract(" + quote(name) + "): ");
    }

    /// Copies len bytes of any family (AF_PACKET, AF_NETLINK, ...).
    /// Throws std::invalid_argument if len exceeds capacity(), is 1, or sa is
    /// null with a nonzero len.
    static address from_raw(const sockaddr* sa, socklen_t len) {
        if (too_long(len))
            throw std::invalid_argument("cosock::address::from_raw: length " + std::to_string(len) +
                                        " exceeds capacity " + std::to_string(capacity()));
        if (sa == nullptr && len != 0)
            throw std::invalid_argument("cosock::address::from_raw: null address with length " + std::to_string(len));
        address a;
        if (len != 0) std::memcpy(&a.storage_, sa, std::size_t(len));
        a.resize(len);
        return a;
    }

    /// The address family (AF_INET, AF_INET6, AF_UNIX, ...). Never throws.
    int family() const noexcept { return storage_.ss_family; }

    /// The IP text, with "%scope" for a nonzero IPv6 scope id.
    /// Throws std::logic_error unless the family is AF_INET or AF_INET6.
    std::string host() const {
        if (family() == AF_INET) {
            sockaddr_in in{};
            std::memcpy(&in, &storage_, sizeof in);
            char text[INET_ADDRSTRLEN] = {};
            ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
            return text;
        }
        if (family() == AF_INET6) {
            sockaddr_in6 in6{};
            std::memcpy(&in6, &storage_, sizeof in6);
            char text[INET6_ADDRSTRLEN] = {};
            ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
            std::string result = text;
            if (in6.sin6_scope_id != 0) {
                // A name reads better and survives re-numbering; an index that
                // names no interface (any more) still round-trips as a number.
                std::string name;
                result += '%';
                if (detail::sys::interface_name(in6.sin6_scope_id, name))
                    result += name;
                else
                    result += std::to_string(in6.sin6_scope_id);
            }
            return result;
        }
        throw std::logic_error("cosock::address::host: family " + std::to_string(family()) +
                               " has no host (only AF_INET and AF_INET6 do)");
    }

    /// The port in host byte order.
    /// Throws std::logic_error unless the family is AF_INET or AF_INET6.
    int port() const {
        if (family() == AF_INET) {
            sockaddr_in in{};
            std::memcpy(&in, &storage_, sizeof in);
            return ntohs(in.sin_port);
        }
        if (family() == AF_INET6) {
            sockaddr_in6 in6{};
            std::memcpy(&in6, &storage_, sizeof in6);
            return ntohs(in6.sin6_port);
        }
        throw std::logic_error("cosock::address::port: family " + std::to_string(family()) +
                               " has no port (only AF_INET and AF_INET6 do)");
    }

    /// The AF_UNIX path; an abstract name as "@name", an unnamed socket as "".
    /// Throws std::logic_error for any other family.
    std::string path() const {
        if (family() != AF_UNIX)
            throw std::logic_error("cosock::address::path: family " + std::to_string(family()) +
                                   " has no path (only AF_UNIX does)");
        sockaddr_un un{};
        std::memcpy(&un, &storage_, sizeof un);
        const std::string_view raw(un.sun_path, sun_bytes());
        if (raw.empty()) return {};
        if (raw.front() == '\0') return "@" + std::string(raw.substr(1));
        return std::string(raw.substr(0, raw.find('\0')));
    }

    /// True for a Linux abstract AF_UNIX name. Never throws.
    bool is_abstract() const noexcept {
        return family() == AF_UNIX && sun_bytes() > 0 && reinterpret_cast<const char*>(&storage_)[sun_offset] == '\0';
    }

    /// "1.2.3.4:80", "[::1]:80", "[fe80::1%lo]:80", "/path", "@name"; "" for
    /// the empty address or an unnamed Unix socket; "<family N>" otherwise.
    /// parse(to_string()) gives back an equal address for every form parse
    /// accepts. Throws only std::bad_alloc.
    std::string to_string() const {
        if (size_ == 0) return {};
        switch (family()) {
        case AF_INET:
            return host() + ":" + std::to_string(port());
        case AF_INET6:
            return "[" + host() + "]:" + std::to_string(port());
        case AF_UNIX:
            return path();
        default:
            return "<family " + std::to_string(family()) + ">";
        }
    }

    /// The raw address for the socket calls. Never throws.
    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    /// The raw storage for the kernel to fill; call resize() afterwards.
    /// Never throws.
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    /// The number of meaningful bytes in data(). Never throws.
    socklen_t size() const noexcept { return size_; }
    /// The most bytes an address can hold: sizeof(sockaddr_storage).
    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

    /// Takes the length the kernel reported after filling data(). 0 makes the
    /// empty address (recvfrom on a connected stream reports no peer). An
    /// AF_UNIX path is normalised to count one terminating NUL, as getsockname
    /// does, so that addresses built here compare equal to the kernel's.
    /// Throws std::invalid_argument if n exceeds capacity() or is 1 (too short
    /// for a family).
    void resize(socklen_t n) {
        if (too_long(n))
            throw std::invalid_argument("cosock::address::resize: length " + std::to_string(n) + " exceeds capacity " +
                                        std::to_string(capacity()));
        if (n != 0 && std::size_t(n) < sizeof(sockaddr::sa_family))
            throw std::invalid_argument("cosock::address::resize: length " + std::to_string(n) +
                                        " cannot hold an address family");
        size_ = n;
        zero_tail();
        if (family() == AF_UNIX) normalize_unix();
    }

    /// Equal when the sizes and the first size() bytes match. Never throws.
    friend bool operator==(const address& a, const address& b) noexcept {
        return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, std::size_t(a.size_)) == 0;
    }

  private:
    static constexpr socklen_t sun_offset = offsetof(sockaddr_un, sun_path);
    static constexpr std::size_t sun_capacity = sizeof(sockaddr_un::sun_path);

    // Bytes of sun_path counted in size_; never more than sun_path holds.
    std::size_t sun_bytes() const noexcept {
        if (size_ <= sun_offset) return 0;
        const std::size_t n = std::size_t(size_ - sun_offset);
        return n < sun_capacity ? n : sun_capacity;
    }

    // Bytes past size_ are kept zero so that == and the accessors never see
    // what an earlier, longer address or the kernel left behind.
    void zero_tail() noexcept {
        std::memset(reinterpret_cast<char*>(&storage_) + size_, 0, std::size_t(capacity() - size_));
    }

    // Longer than the storage, or negative (socklen_t is signed on Windows).
    static bool too_long(socklen_t n) noexcept {
        using u = std::make_unsigned_t<socklen_t>;
        return u(n) > u(capacity());
    }

    // The kernel reports a path with or without its NUL (and bind() accepts
    // both); counting exactly one keeps == meaningful. Abstract names are
    // binary, so their length is kept as reported.
    void normalize_unix() noexcept {
        if (std::size_t(size_) > sizeof(sockaddr_un)) size_ = sizeof(sockaddr_un);
        if (size_ <= sun_offset || is_abstract()) {
            zero_tail();
            return;
        }
        const char* sun_path = reinterpret_cast<const char*>(&storage_) + sun_offset;
        const std::string_view raw(sun_path, sun_bytes());
        const std::size_t nul = raw.find('\0');
        const std::size_t len = nul == std::string_view::npos ? raw.size() : nul;
        // A path filling all of sun_path has no room for the NUL (Linux
        // accepts that); storage_ is longer, but bind() refuses a longer length.
        size_ = static_cast<socklen_t>(sun_offset + (len < sun_capacity ? len + 1 : len));
        zero_tail();
    }

    [[noreturn]] static void fail(const std::string& prefix, const std::string& problem) {
        throw std::invalid_argument(prefix + problem);
    }

    // Quotes user text for an error message; control bytes are escaped so a
    // NUL cannot cut the message short, and huge input is elided.
    static std::string quote(std::string_view text) {
        constexpr std::size_t limit = 256;
        static constexpr char hex[] = "0123456789abcdef";
        std::string out = "\"";
        for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
            const auto c = static_cast<unsigned char>(text[i]);
            if (c == '"' || c == '\\') {
                out += '\\';
                out += static_cast<char>(c);
            } else if (c == 0) {
                out += "\\0";
            } else if (c < 0x20 || c == 0x7f) {
                out += "\\x";
                out += hex[c >> 4];
                out += hex[c & 0xf];
            } else {
                out += static_cast<char>(c);
            }
        }
        if (text.size() > limit) out += "...";
        out += '"';
        return out;
    }

    static bool all_digits(std::string_view s) noexcept {
        for (char c : s)
            if (c < '0' || c > '9') return false;
        return !s.empty();
    }

    static std::uint16_t parse_port(std::string_view text, const std::string& prefix) {
        if (text.empty()) fail(prefix, "missing port after ':'");
        if (!all_digits(text)) fail(prefix, "port " + quote(text) + " is not a decimal number 0..65535");
        unsigned long value = 0;
        for (char c : text) {
            value = value * 10 + static_cast<unsigned long>(c - '0');
            if (value > 65535) fail(prefix, "port " + quote(text) + " is out of range 0..65535");
        }
        return static_cast<std::uint16_t>(value);
    }

    // As the C library's numeric parsing: any IPv6 address takes a numeric
    // scope, and only a link-local one (fe80::/10, ff02::/16) an interface name.
    static std::uint32_t parse_scope(std::string_view scope, const in6_addr& ip, const std::string& prefix) {
        if (scope.empty()) fail(prefix, "empty scope after '%'");
        if (all_digits(scope)) {
            std::uint64_t value = 0;
            for (char c : scope) {
                value = value * 10 + static_cast<std::uint64_t>(c - '0');
                if (value > UINT32_MAX) fail(prefix, "scope " + quote(scope) + " is out of range");
            }
            return static_cast<std::uint32_t>(value);
        }
        if (!IN6_IS_ADDR_LINKLOCAL(&ip) && !IN6_IS_ADDR_MC_LINKLOCAL(&ip))
            fail(prefix, "an interface name as scope (" + quote(scope) +
                             ") is only valid on a link-local address; give the interface's number");
        const std::string name(scope);
        const unsigned index = name.find('\0') == std::string::npos ? detail::sys::interface_index(name.c_str()) : 0;
        if (index == 0) fail(prefix, "unknown network interface " + quote(scope));
        return index;
    }

    void assign_ip(std::string_view host, std::uint16_t port, const std::string& prefix) {
        bool bracketed = false;
        if (!host.empty() && host.front() == '[') {
            if (host.back() != ']' || host.size() < 2) fail(prefix, "missing ']' after the IPv6 address");
            host = host.substr(1, host.size() - 2);
            bracketed = true;
            if (host.empty()) fail(prefix, "empty IPv6 address in brackets");
        }
        const auto percent = host.find('%');
        const std::string_view ip = host.substr(0, percent);
        const bool v6 = ip.find(':') != std::string_view::npos;
        if (bracketed && !v6) fail(prefix, "brackets are only for IPv6 addresses, not " + quote(host));
        if (percent != std::string_view::npos && !v6)
            fail(prefix, "a \"%scope\" suffix is only valid on IPv6 addresses, not " + quote(host));

        storage_ = {};
        if (!v6) {
            sockaddr_in in{};
            in.sin_family = AF_INET;
            in.sin_port = htons(port);
            // inet_pton stops at a NUL, so one inside the view must fail here.
            const std::string text(ip);
            if (!ip.empty() &&
                (ip.find('\0') != std::string_view::npos || ::inet_pton(AF_INET, text.c_str(), &in.sin_addr) != 1)) {
                if (ip.find_first_not_of("0123456789.") == std::string_view::npos)
                    fail(prefix, quote(ip) + " is not a valid IPv4 address");
                fail(prefix, quote(ip) + " is not a numeric IP address; resolve host names "
                                         "with cosock::getaddrinfo");
            }
            std::memcpy(&storage_, &in, sizeof in);
            size_ = sizeof in;
            return;
        }
        sockaddr_in6 in6{};
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        const std::string text(ip);
        if (ip.find('\0') != std::string_view::npos || ::inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) != 1)
            fail(prefix, quote(ip) + " is not a valid IPv6 address");
        if (percent != std::string_view::npos)
            in6.sin6_scope_id = parse_scope(host.substr(percent + 1), in6.sin6_addr, prefix);
        std::memcpy(&storage_, &in6, sizeof in6);
        size_ = sizeof in6;
    }

    static address make_unix_path(std::string_view path, const std::string& prefix) {
        if (path.empty()) fail(prefix, "empty Unix socket path");
        if (path.find('\0') != std::string_view::npos) fail(prefix, "Unix socket path contains a NUL byte");
        // The kernel needs the terminating NUL inside sun_path to find the end.
        if (path.size() >= sun_capacity)
            fail(prefix, "Unix socket path is " + std::to_string(path.size()) + " bytes; at most " +
                             std::to_string(sun_capacity - 1) + " fit");
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, path.data(), path.size());
        address a;
        std::memcpy(&a.storage_, &un, sizeof un);
        a.size_ = static_cast<socklen_t>(sun_offset + path.size() + 1);
        return a;
    }

    static address make_abstract(std::string_view name, const std::string& prefix) {
        if (name.empty()) fail(prefix, "empty abstract socket name");
        // One byte of sun_path is the leading NUL that marks the name abstract.
        if (name.size() > sun_capacity - 1)
            fail(prefix, "abstract socket name is " + std::to_string(name.size()) + " bytes; at most " +
                             std::to_string(sun_capacity - 1) + " fit");
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path + 1, name.data(), name.size());
        address a;
        std::memcpy(&a.storage_, &un, sizeof un);
        // No trailing NUL: the length is what delimits an abstract name.
        a.size_ = static_cast<socklen_t>(sun_offset + 1 + name.size());
        return a;
    }

    sockaddr_storage storage_{};
    socklen_t size_ = 0;
};

/// What `co_await sock.recvfrom(buf)` gives: bytes received and the sender.
struct recvfrom_result {
    std::size_t size;
    cosock::address address;
};

} // namespace cosock
