// Instantiates the main templates of the public headers, so that warnings
// inside them fire under scripts/strict_headers.sh's flags. Compiled only,
// never run.
#include <cosock/cosock.hpp>
#include <cosock/tls.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

cosock::task<std::size_t> stream(cosock::scheduler& s) {
    cosock::socket srv{s, cosock::af_inet, cosock::sock_stream};
    srv.setsockopt(cosock::sol_socket, cosock::so_reuseaddr, 1);
    srv.bind({"127.0.0.1", 0});
    srv.listen();
    cosock::socket client{s};
    co_await client.connect(srv.getsockname());
    auto [conn, peer] = co_await srv.accept();
    std::array<char, 64> chars{};
    std::vector<unsigned char> bytes(16);
    std::array<std::byte, 8> raw{};
    std::size_t n = co_await conn.recv(chars);
    n += co_await conn.recv(bytes);
    n += co_await conn.recv(std::span<std::byte>(raw));
    n += co_await client.send(std::string_view("abc"));
    n += co_await client.sendall(std::string("def"));
    n += co_await client.sendall(bytes);
    auto [got, from] = co_await conn.recvfrom(chars);
    n += got + co_await conn.sendto(std::string_view("x"), from);
    co_return n + static_cast<std::size_t>(peer.port());
}

cosock::task<std::string> files(cosock::socket& sock) {
    auto f = sock.makefile("rwb");
    std::string all = co_await f.read(10);
    all += co_await f.read1();
    all += co_await f.readline();
    all += co_await f.readline(5);
    all += co_await f.peek();
    std::array<char, 8> into{};
    all.append(into.data(), co_await f.readinto(into));
    for (auto& line : co_await f.readlines()) all += line;
    co_await f.write(std::string_view("abc"));
    co_await f.write(all);
    std::vector<std::string> lines{"a\n", "b\n"};
    co_await f.writelines(lines);
    co_await f.flush();
    auto t = sock.makefile("r", 1, {.newline = ""});
    all += co_await t.readline();
    co_await f.close();
    co_return all;
}

cosock::task<int> value(int v) {
    co_await cosock::sleep_for(1ms);
    co_return v;
}

cosock::task<> nothing() { co_return; }

cosock::task<long> combinators(cosock::scheduler& s, cosock::socket& a, cosock::socket& b) {
    std::vector<cosock::task<int>> many;
    many.push_back(value(1));
    many.push_back(value(2));
    std::vector<int> all = co_await cosock::when_all(std::move(many));
    auto [x, y, none] = co_await cosock::when_all(value(3), value(4), nothing());
    (void)none;
    std::vector<cosock::task<int>> race;
    race.push_back(value(5));
    race.push_back(value(6));
    cosock::any_result<int> first = co_await cosock::when_any(std::move(race));
    int late = co_await cosock::with_timeout(value(7), 50ms);
    std::array<char, 4> buf{};
    std::size_t got = co_await cosock::with_timeout(a.recv(buf), 10ms);
    co_await cosock::sleep_until(std::chrono::steady_clock::now() + 1ms);
    std::vector<cosock::socket*> readers{&a, &b}, writers{&b}, none_of_them;
    auto ready = co_await cosock::select(readers, writers, none_of_them, 500ms);
    std::vector<int> fds{a.fileno()}, no_fds;
    auto ready_fds = co_await cosock::select(fds, no_fds, no_fds, 100ms);
    std::vector<int> forever_fds{b.fileno()};
    auto forever = co_await cosock::select(forever_fds, no_fds, no_fds);
    a.settimeout(2s);
    a.settimeout(1.5);
    a.settimeout(std::nullopt);
    co_await s.yield();
    co_return static_cast<long>(all.size() + got + ready.readable.size() + ready_fds.readable.size() +
                                forever.writable.size() + first.index + first.others.size()) +
        x + y + late + first.value;
}

cosock::task<int> channels() {
    cosock::channel<int> ch(4);
    co_await ch.send(1);
    int v = 2;
    bool queued = ch.try_send(v);
    std::optional<int> got = co_await ch.receive();
    std::optional<int> next = ch.try_receive();
    ch.close();
    co_return (got ? *got : 0) + (next ? *next : 0) + (queued ? 1 : 0) + static_cast<int>(ch.size() + ch.capacity());
}

cosock::task<> names(cosock::scheduler& s) {
    auto found = co_await cosock::getaddrinfo("localhost", "80");
    cosock::host_port where{"localhost", 8080}; // GCC 12: no braced list inside co_await
    cosock::socket c = co_await cosock::create_connection(where, 2s);
    cosock::socket srv = cosock::create_server(s, {"::", 0}, {.reuse_port = true, .dualstack_ipv6 = true});
    auto [a, b] = cosock::socketpair(s);
    int sig = co_await cosock::wait_signal({SIGINT, SIGTERM});
    cosock::signal_set set{s, {SIGHUP}};
    sig += co_await set.wait();
    (void)found;
    (void)sig;
}

void group() {
    cosock::scheduler_group g(2);
    g.stop_on({SIGINT, SIGTERM});
    g.run([](cosock::scheduler& s, std::size_t i) -> cosock::task<> {
        cosock::scheduler& other = s;
        co_await cosock::resume_on(other);
        co_await cosock::sleep_for(std::chrono::milliseconds(i));
    });
    cosock::scheduler& t = g.next();
    t.post([] {});
    (void)g.least_loaded();
}

cosock::task<std::size_t> tls(cosock::scheduler& s) {
    cosock::ssl_context ctx = cosock::create_default_context();
    auto server = cosock::ssl_context::server();
    server.load_cert_chain("cert.pem", "key.pem");
    cosock::socket sock{s};
    cosock::address to{"127.0.0.1", 443};
    co_await sock.connect(to);
    cosock::wrap_options opts{.server_hostname = "localhost"};
    cosock::ssl_socket conn = co_await ctx.wrap_socket(std::move(sock), opts);
    std::size_t n = co_await conn.sendall(std::string_view("GET / HTTP/1.0\r\n\r\n"));
    n += co_await conn.send(std::string("x"));
    std::array<char, 4096> buf{};
    std::vector<std::byte> bytes(8);
    while (std::size_t got = co_await conn.recv(buf)) n += got;
    n += co_await conn.recv(bytes);
    cosock::file_object f = conn.makefile("rwb");
    std::string line = co_await f.readline();
    co_await f.write(line);
    co_await f.close();
    co_await conn.shutdown();
    co_return n;
}

} // namespace

int main() {
    cosock::scheduler s;
    cosock::scheduler exact{cosock::backend::epoll};
    auto [a, b] = cosock::socketpair(s);
    std::size_t n = s.run(stream(s));
    n += s.run(files(a)).size();
    n += static_cast<std::size_t>(s.run(combinators(s, a, b)));
    n += static_cast<std::size_t>(s.run(channels()));
    s.run(names(s));
    n += s.run(tls(s));
    group();
    return n == 0;
}
