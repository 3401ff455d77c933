// Tests for cosock::address. The header comes first to prove it is
// self-contained.
#include <cosock/address.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#if !COSOCK_WINDOWS
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

using cosock::address;
using namespace std::string_literals;
using namespace std::string_view_literals;

static_assert(std::is_nothrow_default_constructible_v<address>);
static_assert(std::is_copy_constructible_v<address> && std::is_copy_assignable_v<address>);
static_assert(address::capacity() == sizeof(sockaddr_storage));

namespace {

constexpr socklen_t sun_offset = offsetof(sockaddr_un, sun_path);
constexpr std::size_t sun_capacity = sizeof(sockaddr_un::sun_path);

// what() of the Exception f throws, or a marker no check expects; a different
// exception type escapes and fails the test.
template <class Exception, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const Exception& e) {
        return e.what();
    }
    return "<no exception thrown>";
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Writes a raw sockaddr into a.data() the way the kernel would, then resizes.
template <class Sockaddr>
address kernel_filled(const Sockaddr& sa, socklen_t reported_len, unsigned char stale = 0xAA) {
    address a = address::parse("[2001:db8::dead:beef]:9"); // leaves bytes to go stale
    std::memset(a.data(), stale, address::capacity());
    const auto len = std::size_t(reported_len); // socklen_t is signed on Windows
    std::memcpy(a.data(), &sa, sizeof sa < len ? sizeof sa : len);
    a.resize(reported_len);
    return a;
}

sockaddr_un raw_unix(std::string_view path_bytes) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path_bytes.data(), path_bytes.size());
    return un;
}

// A plain socket of the system, not a cosock::socket: -1 when refused.
int open_socket(int family, int type) {
#if COSOCK_WINDOWS // winsock's SOCKET, after WSAStartup, kept in an int as cosock does
    const int fd = cosock::detail::sys::socket(family, type, 0);
    return fd < 0 ? -1 : fd;
#else
    return ::socket(family, type, 0);
#endif
}

struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0) cosock::detail::sys::close(fd);
    }
};

// The index of the loopback interface by its Linux name, 0 where there is
// none. Windows scopes are numbers only (cosock looks no interface name up
// there), so the name checks below are Linux's.
unsigned loopback_index() {
#if COSOCK_WINDOWS
    return 0;
#else
    return ::if_nametoindex("lo");
#endif
}

address local_name(int fd) {
    address a;
    socklen_t len = address::capacity();
    REQUIRE(cosock::detail::sys::getsockname(fd, a.data(), &len) == 0);
    a.resize(len);
    return a;
}

} // namespace

TEST_CASE("address is empty by default") {
    const address a;
    CHECK(a.family() == AF_UNSPEC);
    CHECK(a.size() == 0);
    CHECK(a.to_string().empty());
    CHECK_FALSE(a.is_abstract());
    CHECK(a == address{});
    CHECK_FALSE(a == address("0.0.0.0", 0));
}

TEST_CASE("address built from an IPv4 literal exposes host, port and family") {
    const address a("127.0.0.1", 8080);
    CHECK(a.family() == AF_INET);
    CHECK(a.host() == "127.0.0.1");
    CHECK(a.port() == 8080);
    CHECK(a.size() == sizeof(sockaddr_in));
    CHECK(a.to_string() == "127.0.0.1:8080");

    sockaddr_in in{};
    std::memcpy(&in, a.data(), sizeof in);
    CHECK(ntohs(in.sin_port) == 8080);
    CHECK(ntohl(in.sin_addr.s_addr) == 0x7f000001u);
}

TEST_CASE("address can be brace-initialised like a Python (host, port) tuple") {
    const address a = {"10.0.0.1", 53};
    CHECK(a.to_string() == "10.0.0.1:53");
}

TEST_CASE("address built from an empty host is the IPv4 any-address") {
    const address a("", 80);
    CHECK(a.family() == AF_INET);
    CHECK(a.host() == "0.0.0.0");
    CHECK(a == address("0.0.0.0", 80));
}

TEST_CASE("address accepts the port range ends 0 and 65535") {
    CHECK(address("1.2.3.4", 0).port() == 0);
    CHECK(address("1.2.3.4", 65535).port() == 65535);
    CHECK(address("::1", 65535).port() == 65535);
}

TEST_CASE("address built from an IPv6 literal exposes host and port, with or without brackets") {
    const address a("::1", 443);
    CHECK(a.family() == AF_INET6);
    CHECK(a.host() == "::1");
    CHECK(a.port() == 443);
    CHECK(a.size() == sizeof(sockaddr_in6));
    CHECK(a.to_string() == "[::1]:443");
    CHECK(address("[::1]", 443) == a);
    CHECK(address("0:0:0:0:0:0:0:1", 443) == a);
    CHECK_FALSE(address("::2", 443) == a);
}

TEST_CASE("address resolves an IPv6 scope given as an interface name or a number") {
#if COSOCK_WINDOWS // scopes are numbers there: one is kept and shown as it is, a name is unknown
    const address numbered("fe80::1%1", 80);
    sockaddr_in6 in6_numbered{};
    std::memcpy(&in6_numbered, numbered.data(), sizeof in6_numbered);
    CHECK(in6_numbered.sin6_scope_id == 1);
    CHECK(numbered.host() == "fe80::1%1");
    CHECK(numbered.to_string() == "[fe80::1%1]:80");
    CHECK(address::parse(numbered.to_string()) == numbered);
    CHECK_THROWS_WITH_AS(address("fe80::1%lo", 80), doctest::Contains("unknown network interface"),
                         std::invalid_argument);
#endif
    const unsigned lo = loopback_index();
    if (lo == 0) {
        MESSAGE("no loopback interface named lo; skipped");
        return;
    }
    const address by_name("fe80::1%lo", 80);
    sockaddr_in6 in6{};
    std::memcpy(&in6, by_name.data(), sizeof in6);
    CHECK(in6.sin6_scope_id == lo);
    CHECK(by_name.host() == "fe80::1%lo");
    CHECK(by_name.to_string() == "[fe80::1%lo]:80");

    const address by_number("fe80::1%" + std::to_string(lo), 80);
    CHECK(by_number == by_name);
    CHECK(by_number.host() == "fe80::1%lo");
}

TEST_CASE("address takes a numeric scope on any IPv6 address, and an interface name only on a link-local one") {
#if COSOCK_WINDOWS // scopes are numbers there: the name checks below have no interface to find
    CHECK(address("::1%1", 80).host() == "::1%1");
    CHECK(address("2001:db8::1%2", 80).size() == sizeof(sockaddr_in6));
    CHECK(address("ff02::1%3", 80).host() == "ff02::1%3");
    CHECK_THROWS_WITH_AS(address("::1%lo", 80), doctest::Contains("only valid on a link-local address"),
                         std::invalid_argument);
#endif
    const unsigned lo = loopback_index();
    if (lo == 0) {
        MESSAGE("no loopback interface named lo; skipped");
        return;
    }
    CHECK(address("::1%" + std::to_string(lo), 80).host() == "::1%lo");
    CHECK(address("2001:db8::1%2", 80).size() == sizeof(sockaddr_in6));
    CHECK(address("ff02::1%lo", 80).host() == "ff02::1%lo");
    CHECK_THROWS_AS(address("::1%lo", 80), std::invalid_argument);
}

TEST_CASE("address shows a scope that names no interface as its number") {
    const address a("fe80::1%4000000000", 80);
    CHECK(a.host() == "fe80::1%4000000000");
    CHECK(a.to_string() == "[fe80::1%4000000000]:80");
    CHECK(address::parse(a.to_string()) == a);
}

TEST_CASE("address refuses a host name and points to cosock::getaddrinfo") {
    CHECK_THROWS_WITH_AS(address("localhost", 80), doctest::Contains("\"localhost\""), std::invalid_argument);
    const auto msg = message_of<std::invalid_argument>([] { address("example.com", 80); });
    CHECK(contains(msg, "\"example.com\""));
    CHECK(contains(msg, "not a numeric IP address"));
    CHECK(contains(msg, "cosock::getaddrinfo"));
}

TEST_CASE("address refuses a port outside 0..65535 and names it") {
    for (int port : {-1, 65536, 1 << 30}) {
        INFO("port ", port);
        const auto msg = message_of<std::invalid_argument>([&] { address("1.2.3.4", port); });
        CHECK(contains(msg, std::to_string(port)));
        CHECK(contains(msg, "out of range"));
    }
}

TEST_CASE("address refuses malformed IP text and says what is wrong") {
    struct bad {
        std::string_view host;
        std::string_view shown; // the host as the message quotes it
        std::string_view problem;
    };
    const bad cases[] = {
        {"1.2.3.256", "\"1.2.3.256\"", "not a valid IPv4 address"},
        {"1.2.3", "\"1.2.3\"", "not a valid IPv4 address"},
        {"01.2.3.4", "\"01.2.3.4\"", "not a valid IPv4 address"},
        {"::g", "\"::g\"", "not a valid IPv6 address"},
        {"1:2:3:4:5:6:7:8:9", "\"1:2:3:4:5:6:7:8:9\"", "not a valid IPv6 address"},
        {"1.2.3.4%lo", "\"1.2.3.4%lo\"", "only valid on IPv6"},
        {"[1.2.3.4]", "\"[1.2.3.4]\"", "brackets are only for IPv6"},
        {"[::1", "\"[::1\"", "missing ']'"},
        {"[", "\"[\"", "missing ']'"},
        {"[]", "\"[]\"", "empty IPv6 address"},
        {"fe80::1%", "\"fe80::1%\"", "empty scope"},
        {"fe80::1%nosuchif0", "\"nosuchif0\"", "unknown network interface"},
        {"fe80::1%4294967296", "\"4294967296\"", "out of range"},
        {"::1%lo", "\"lo\"", "only valid on a link-local address"},
        {"2001:db8::1%lo", "\"lo\"", "only valid on a link-local address"},
        {"127.1", "\"127.1\"", "not a valid IPv4 address"},     // inet_aton's short forms are refused
        {"0x7f.0.0.1", "\"0x7f.0.0.1\"", "not a numeric IP"}, // and so is its hexadecimal
        {"1.2.3.4\0junk"sv, "\"1.2.3.4\\0junk\"", "not a numeric IP address"},
        {"::1\0"sv, "\"::1\\0\"", "not a valid IPv6 address"},
    };
    for (const auto& c : cases) {
        INFO("host ", std::string(c.shown));
        const auto msg = message_of<std::invalid_argument>([&] { address(c.host, 80); });
        CHECK(contains(msg, c.shown));
        CHECK(contains(msg, c.problem));
    }
}

TEST_CASE("address parses an IPv4 literal with its port") {
    const auto a = address::parse("192.168.1.20:8080");
    CHECK(a.family() == AF_INET);
    CHECK(a.host() == "192.168.1.20");
    CHECK(a.port() == 8080);
    CHECK(a == address("192.168.1.20", 8080));
}

TEST_CASE("address parses an IPv6 literal in brackets with its port") {
    const auto a = address::parse("[2001:db8::1]:53");
    CHECK(a.family() == AF_INET6);
    CHECK(a.host() == "2001:db8::1");
    CHECK(a.port() == 53);
    CHECK(a == address("2001:db8::1", 53));
}

TEST_CASE("address parses an empty host before the port as the IPv4 any-address") {
    CHECK(address::parse(":80") == address("0.0.0.0", 80));
}

TEST_CASE("address parses a Unix path starting with '/' or '.'") {
    for (std::string_view text : {"/run/x.sock"sv, "./x.sock"sv, "../x.sock"sv, ".x"sv}) {
        INFO(std::string(text));
        const auto a = address::parse(text);
        CHECK(a.family() == AF_UNIX);
        CHECK(a.path() == text);
        CHECK_FALSE(a.is_abstract());
        CHECK(a.size() == sun_offset + text.size() + 1);
        CHECK(a == address::unix_path(text));
    }
}

TEST_CASE("address parses '@name' as a Linux abstract name") {
    const auto a = address::parse("@cosock-test");
    CHECK(a.family() == AF_UNIX);
    CHECK(a.is_abstract());
    CHECK(a.path() == "@cosock-test");
    CHECK(a.size() == sun_offset + 1 + std::strlen("cosock-test"));
    CHECK(a == address::abstract("cosock-test"));
    CHECK_FALSE(a == address::unix_path("cosock-test"));

    sockaddr_un un{};
    std::memcpy(&un, a.data(), sizeof un);
    CHECK(un.sun_path[0] == '\0');
    CHECK(std::string_view(un.sun_path + 1, 11) == "cosock-test");
}

TEST_CASE("address to_string round-trips through parse for every accepted form") {
    const std::string_view canonical[] = {
        "1.2.3.4:80",
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "[::1]:80",
        "[::]:0",
        "[2001:db8::1:2]:8080",
        "[::ffff:1.2.3.4]:443",
#if !COSOCK_WINDOWS // an interface name as scope; Windows scopes are numbers
        "[fe80::1%lo]:80",
#endif
        "[fe80::1%4000000000]:1",
        "/run/x.sock",
        "./x.sock",
        "../x.sock",
        "@name",
        "@with space",
        "/",
    };
    for (auto text : canonical) {
        INFO(std::string(text));
        const auto a = address::parse(text);
        CHECK(a.to_string() == text);
        CHECK(address::parse(a.to_string()) == a);
    }
}

TEST_CASE("address to_string writes non-canonical input in canonical form") {
    struct form {
        std::string_view in;
        std::string_view out;
    };
    const form forms[] = {
        {"[0:0:0:0:0:0:0:1]:80", "[::1]:80"},
        {"[2001:DB8::1]:80", "[2001:db8::1]:80"},
        {"1.2.3.4:080", "1.2.3.4:80"},
        {":80", "0.0.0.0:80"},
    };
    for (const auto& f : forms) {
        INFO(std::string(f.in));
        const auto a = address::parse(f.in);
        CHECK(a.to_string() == f.out);
        CHECK(address::parse(a.to_string()) == a);
    }
}

TEST_CASE("address parse refuses bad text, quoting it and saying what is wrong") {
    struct bad {
        std::string_view text;
        std::string_view problem;
    };
    const bad cases[] = {
        {"", "empty address"},
        {"garbage", "missing port"},
        {"x.sock", "missing port"},
        {"1.2.3.4", "missing port"},
        {"1.2.3.4:", "missing port"},
        {"[::1]", "missing port"},
        {"[::1]:", "missing port"},
        {"1.2.3.4:65536", "out of range"},
        {"1.2.3.4:99999999999999999999999", "out of range"},
        {"1.2.3.4:-1", "not a decimal number"},
        {"1.2.3.4:+80", "not a decimal number"},
        {"1.2.3.4:80x", "not a decimal number"},
        {"1.2.3.4: 80", "not a decimal number"},
        {"1.2.3.4:0x50", "not a decimal number"},
        {"[::1]:80]", "not a decimal number"},
        {"1.2.3.999:80", "not a valid IPv4 address"},
        {"localhost:80", "cosock::getaddrinfo"},
        {"[::g]:80", "not a valid IPv6 address"},
        {"[[::1]]:80", "expected ':'"},
        {"::1:80", "brackets"},
        {"::1", "brackets"},
        {"fe80::1%lo:80", "brackets"},
        {"1.2.3.4:80:90", "brackets"},
        {"[::1:80", "missing ']'"},
        {"[::1]80", "expected ':'"},
        {"[1.2.3.4]:80", "brackets are only for IPv6"},
        {"[]:80", "empty IPv6 address"},
        {"1.2.3.4%lo:80", "only valid on IPv6"},
        {"[fe80::1%]:80", "empty scope"},
        {"[fe80::1%nosuchif0]:80", "unknown network interface"},
        {"@", "empty abstract"},
    };
    for (const auto& c : cases) {
        INFO(quoted(c.text));
        const auto msg = message_of<std::invalid_argument>([&] { address::parse(c.text); });
        CHECK(contains(msg, quoted(c.text)));
        CHECK(contains(msg, c.problem));
    }
    CHECK_THROWS_WITH_AS(address::parse("1.2.3.4:70000"), doctest::Contains("\"1.2.3.4:70000\""),
                         std::invalid_argument);
}

TEST_CASE("address parse refuses a NUL byte in a path and shows it escaped") {
    const auto msg = message_of<std::invalid_argument>([] { address::parse("/tmp/a\0b"sv); });
    CHECK(contains(msg, "\"/tmp/a\\0b\""));
    CHECK(contains(msg, "NUL"));
    CHECK_THROWS_AS(address::unix_path("./a\0"sv), std::invalid_argument);
}

TEST_CASE("address parse never reads past a view that is not NUL-terminated") {
    const char text[] = "1.2.3.4:80999";
    // The view stops before the extra digits; the bytes after it must not count.
    CHECK(address::parse(std::string_view(text, 10)) == address("1.2.3.4", 80));
    CHECK(address::parse(std::string_view(text, 9)) == address("1.2.3.4", 8));
    const char path[] = "/run/a.sockXYZ";
    CHECK(address::parse(std::string_view(path, 11)).path() == "/run/a.sock");
}

TEST_CASE("address elides a huge bad input in the message") {
    const std::string text(100000, 'x');
    const auto msg = message_of<std::invalid_argument>([&] { address::parse(text); });
    CHECK(contains(msg, "missing port"));
    CHECK(contains(msg, "..."));
    CHECK(msg.size() < 1000);
}

TEST_CASE("address accepts a Unix path of exactly the maximum length and refuses one byte more") {
    const std::string longest = "/" + std::string(sun_capacity - 2, 'p'); // NUL fills the last byte
    REQUIRE(longest.size() == sun_capacity - 1);
    const auto a = address::parse(longest);
    CHECK(a.path() == longest);
    CHECK(a.size() == sizeof(sockaddr_un));
    CHECK(address::unix_path(longest) == a);
    CHECK(address::parse(a.to_string()) == a);

    const std::string too_long = longest + "p";
    const auto msg = message_of<std::invalid_argument>([&] { address::parse(too_long); });
    CHECK(contains(msg, quoted(too_long)));
    CHECK(contains(msg, std::to_string(sun_capacity)));
    CHECK(contains(msg, "at most " + std::to_string(sun_capacity - 1)));
    CHECK_THROWS_WITH_AS(address::unix_path(too_long), doctest::Contains(quoted(too_long).c_str()),
                         std::invalid_argument);
}

TEST_CASE("address accepts an abstract name of exactly the maximum length and refuses one more") {
    const std::string longest(sun_capacity - 1, 'n');
    const auto a = address::abstract(longest);
    CHECK(a.size() == sizeof(sockaddr_un));
    CHECK(a.path() == "@" + longest);
    CHECK(address::parse("@" + longest) == a);

    const std::string too_long = longest + "n";
    const auto msg = message_of<std::invalid_argument>([&] { address::abstract(too_long); });
    CHECK(contains(msg, quoted(too_long)));
    CHECK(contains(msg, "at most " + std::to_string(sun_capacity - 1)));
    CHECK_THROWS_WITH_AS(address::parse("@" + too_long), doctest::Contains(quoted("@" + too_long).c_str()),
                         std::invalid_argument);
}

TEST_CASE("address refuses empty Unix paths and abstract names") {
    CHECK_THROWS_WITH_AS(address::unix_path(""), doctest::Contains("empty Unix socket path"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(address::abstract(""), doctest::Contains("empty abstract socket name"), std::invalid_argument);
}

TEST_CASE("address unix_path takes a relative path without a leading dot") {
    const auto a = address::unix_path("x.sock");
    CHECK(a.path() == "x.sock");
    CHECK(a.size() == sun_offset + 7);
}

TEST_CASE("address keeps NUL bytes inside an abstract name, which Linux allows") {
    const auto a = address::abstract("a\0b"sv);
    CHECK(a.size() == sun_offset + 4);
    CHECK(a.path() == "@a\0b"s);
    CHECK(address::parse(a.to_string()) == a);
    CHECK_FALSE(a == address::abstract("a"));
}

TEST_CASE("address accessors throw logic_error when asked of the wrong family") {
    const auto un = address::unix_path("/x");
    const auto in = address("1.2.3.4", 5);
    CHECK_THROWS_WITH_AS(un.host(), doctest::Contains("AF_INET"), std::logic_error);
    CHECK_THROWS_AS(un.port(), std::logic_error);
    CHECK_THROWS_WITH_AS(in.path(), doctest::Contains("AF_UNIX"), std::logic_error);
    CHECK_THROWS_AS(address().host(), std::logic_error);
    CHECK_THROWS_AS(address().port(), std::logic_error);
    CHECK_THROWS_AS(address().path(), std::logic_error);
    // invalid_argument is a logic_error too; the input was fine, the question was not.
    bool threw_plain_logic_error = false;
    try {
        (void)un.host();
    } catch (const std::invalid_argument&) {
    } catch (const std::logic_error&) {
        threw_plain_logic_error = true;
    }
    CHECK(threw_plain_logic_error);
}

TEST_CASE("address from_raw copies any family and shows it as <family N>") {
    sockaddr_storage ss{};
    ss.ss_family = 17; // AF_PACKET; the value is spelled out to need no extra header
    const auto a = address::from_raw(reinterpret_cast<const sockaddr*>(&ss), 20);
    CHECK(a.family() == 17);
    CHECK(a.size() == 20);
    CHECK(a.to_string() == "<family 17>");
    CHECK_THROWS_AS(a.host(), std::logic_error);
}

TEST_CASE("address from_raw round-trips an address's own bytes") {
    for (const auto& a :
         {address("1.2.3.4", 80), address("::1", 80), address::unix_path("/x"), address::abstract("y"), address()}) {
        INFO(a.to_string());
        CHECK(address::from_raw(a.data(), a.size()) == a);
    }
    const address cap = address::from_raw(address("::1", 1).data(), address::capacity());
    CHECK(cap.size() == address::capacity());
}

TEST_CASE("address from_raw refuses a length past capacity and a null pointer with a length") {
    const address a("1.2.3.4", 80);
    const auto too_long = static_cast<socklen_t>(address::capacity() + 1);
    const auto msg = message_of<std::invalid_argument>([&] { address::from_raw(a.data(), too_long); });
    CHECK(contains(msg, std::to_string(too_long)));
    CHECK(contains(msg, "capacity"));
    CHECK_THROWS_WITH_AS(address::from_raw(nullptr, 16), doctest::Contains("null"), std::invalid_argument);
    CHECK_THROWS_AS(address::from_raw(a.data(), 1), std::invalid_argument);
    CHECK(address::from_raw(nullptr, 0) == address());
}

TEST_CASE("address resize refuses a length past capacity and leaves the address unchanged") {
    address a("1.2.3.4", 80);
    const auto too_long = static_cast<socklen_t>(address::capacity() + 1);
    const auto msg = message_of<std::invalid_argument>([&] { a.resize(too_long); });
    CHECK(contains(msg, std::to_string(too_long)));
    CHECK(a == address("1.2.3.4", 80));
    CHECK_THROWS_AS(a.resize(1), std::invalid_argument);
    CHECK(a.to_string() == "1.2.3.4:80");
}

TEST_CASE("address resize to 0 makes the empty address, as recvfrom on a stream reports") {
    address a("1.2.3.4", 80);
    a.resize(0);
    CHECK(a == address());
    CHECK(a.family() == AF_UNSPEC);
    CHECK(a.to_string().empty());
}

TEST_CASE("address filled by the kernel ignores stale bytes past the reported length") {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(80);
    in.sin_addr.s_addr = htonl(0x01020304);
    const auto a = kernel_filled(in, sizeof in);
    CHECK(a == address("1.2.3.4", 80));
    CHECK(a.to_string() == "1.2.3.4:80");
}

TEST_CASE("address reads a kernel-returned unnamed Unix socket as an empty path") {
    const auto a = kernel_filled(raw_unix(""), sun_offset);
    CHECK(a.family() == AF_UNIX);
    CHECK(a.size() == sun_offset);
    CHECK(a.path().empty());
    CHECK(a.to_string().empty());
    CHECK_FALSE(a.is_abstract());
    CHECK_FALSE(a == address());
}

TEST_CASE("address normalises a kernel-returned Unix path with or without its NUL") {
    const auto expected = address::unix_path("/run/s");
    const auto with_nul = kernel_filled(raw_unix("/run/s"), sun_offset + 7);
    const auto without_nul = kernel_filled(raw_unix("/run/s"), sun_offset + 6);
    const auto full_struct = kernel_filled(raw_unix("/run/s"), sizeof(sockaddr_un), 0);
    for (const auto* a : {&with_nul, &without_nul, &full_struct}) {
        CHECK(a->path() == "/run/s");
        CHECK(a->size() == sun_offset + 7);
        CHECK(*a == expected);
    }
}

TEST_CASE("address reads a kernel-returned Unix path that fills sun_path without a NUL") {
    const std::string full(sun_capacity, 'f');
    const auto a = kernel_filled(raw_unix(full), sizeof(sockaddr_un));
    CHECK(a.path() == full);
    CHECK(a.size() == sizeof(sockaddr_un));
    // A longer length for AF_UNIX is clamped so path() never reads past sun_path.
    const sockaddr_un un = raw_unix(full);
    sockaddr_storage ss{};
    std::memcpy(&ss, &un, sizeof un);
    std::memset(reinterpret_cast<char*>(&ss) + sizeof(sockaddr_un), 'g', sizeof ss - sizeof(sockaddr_un));
    const auto b = address::from_raw(reinterpret_cast<const sockaddr*>(&ss), sizeof ss);
    CHECK(b.path() == full);
    CHECK(b.size() == sizeof(sockaddr_un));
}

TEST_CASE("address reads a kernel-returned abstract name by its length") {
    const auto a = kernel_filled(raw_unix("\0srv"sv), sun_offset + 4);
    CHECK(a.is_abstract());
    CHECK(a.path() == "@srv");
    CHECK(a == address::abstract("srv"));
    CHECK(a.to_string() == "@srv");
}

TEST_CASE("address copies are independent values") {
    address a("1.2.3.4", 80);
    address b = a;
    CHECK(b == a);
    b.resize(0);
    CHECK_FALSE(b == a);
    CHECK(a.to_string() == "1.2.3.4:80");
    b = a;
    CHECK(b == a);
    b = address::unix_path("/x");
    CHECK(b.path() == "/x");
    b = address("::1", 1); // a shorter address must not inherit the path's bytes
    CHECK(b == address("::1", 1));
}

TEST_CASE("address equality compares family, bytes and length") {
    CHECK(address("1.2.3.4", 80) == address::parse("1.2.3.4:80"));
    CHECK_FALSE(address("1.2.3.4", 80) == address("1.2.3.4", 81));
    CHECK_FALSE(address("1.2.3.4", 80) == address("1.2.3.5", 80));
    CHECK_FALSE(address("1.2.3.4", 80) == address("::ffff:1.2.3.4", 80));
    CHECK_FALSE(address::unix_path("/a") == address::unix_path("/ab"));
    CHECK_FALSE(address::abstract("a") == address::abstract("ab"));
    CHECK(address("1.2.3.4", 80) != address("1.2.3.4", 81));
}

TEST_CASE("address matches what getsockname reports for a bound IPv4 socket") {
    const fd_guard s{open_socket(AF_INET, SOCK_DGRAM)};
    REQUIRE(s.fd >= 0);
    const address want("127.0.0.1", 0);
    REQUIRE(::bind(s.fd, want.data(), want.size()) == 0);
    const auto got = local_name(s.fd);
    CHECK(got.family() == AF_INET);
    CHECK(got.host() == "127.0.0.1");
    CHECK(got.port() != 0);
    CHECK(address::parse(got.to_string()) == got);
}

TEST_CASE("address matches what getsockname reports for a bound IPv6 socket") {
    const fd_guard s{open_socket(AF_INET6, SOCK_DGRAM)};
    const address want("::1", 0);
    if (s.fd < 0 || ::bind(s.fd, want.data(), want.size()) != 0) {
        MESSAGE("IPv6 loopback unavailable here: ", std::strerror(errno));
        return;
    }
    const auto got = local_name(s.fd);
    CHECK(got.host() == "::1");
    CHECK(got.port() != 0);
    CHECK(address::parse(got.to_string()) == got);
}

#if !COSOCK_WINDOWS // windows: AF_UNIX sockets, which wine refuses
TEST_CASE("address of the longest Unix path binds and equals what getsockname reports") {
    char dir_template[] = "/tmp/cosock-addr-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    const std::string dir = dir_template;
    const std::string path = dir + "/" + std::string(sun_capacity - 2 - dir.size(), 's');
    REQUIRE(path.size() == sun_capacity - 1);

    const auto want = address::unix_path(path);
    {
        const fd_guard s{::socket(AF_UNIX, SOCK_STREAM, 0)};
        REQUIRE(s.fd >= 0);
        REQUIRE(::bind(s.fd, want.data(), want.size()) == 0);
        CHECK(local_name(s.fd) == want);
    }
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
}

TEST_CASE("address of an abstract name binds and equals what getsockname reports") {
    const auto want = address::abstract("cosock-test-" + std::to_string(::getpid()));
    const fd_guard s{::socket(AF_UNIX, SOCK_STREAM, 0)};
    REQUIRE(s.fd >= 0);
    REQUIRE(::bind(s.fd, want.data(), want.size()) == 0);
    const auto got = local_name(s.fd);
    CHECK(got == want);
    CHECK(got.is_abstract());
}

TEST_CASE("address of an unnamed socketpair end reads as an empty Unix path") {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    const fd_guard a{fds[0]}, b{fds[1]};
    const auto got = local_name(a.fd);
    CHECK(got.family() == AF_UNIX);
    CHECK(got.path().empty());
    CHECK(got.to_string().empty());
}
#endif
