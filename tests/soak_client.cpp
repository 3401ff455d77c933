// The soak client (scripts/soak.sh drives it against examples/echo_server).
//
//   soak_client --port P --connections N --bytes TOTAL [--max-message B] [--seed S]
//   soak_client --port P --connections N --hold SECONDS
//
// Stream mode: every connection sends its share of TOTAL bytes in messages of
// random size (1..B), from a generator seeded per connection, while a second
// task reads the echo back and compares each byte with what the generator
// produced. At the end each connection shuts down its sending side and reads
// to the end of the stream. Prints one line per failing connection and a
// summary; exit status 0 only when every byte came back, in order.
//
// Hold mode: opens N connections, does one round trip on each, holds them all
// open for SECONDS, then closes them. The soak script checks that the server's
// descriptor count returns to where it started.
#include <cosock/cosock.hpp>

#include "../examples/options.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// xorshift64*: the same bytes on both sides of a connection from one seed.
struct generator {
    std::uint64_t state;
    explicit generator(std::uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ULL + 1) {}
    std::uint64_t next() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1DULL;
    }
    void fill(char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>(next() >> 56);
    }
};

struct totals {
    std::uint64_t sent = 0, received = 0;
    int failed = 0;
};

cosock::task<> writer(cosock::socket& sock, std::uint64_t seed, std::uint64_t bytes, std::size_t max_message) {
    generator data(seed), sizes(seed ^ 0xABCDEF);
    std::vector<char> buf(max_message);
    for (std::uint64_t left = bytes; left > 0;) {
        std::size_t n = std::min<std::uint64_t>(left, 1 + sizes.next() % max_message);
        data.fill(buf.data(), n);
        co_await sock.sendall(std::string_view(buf.data(), n));
        left -= n;
    }
    sock.shutdown(cosock::shut_wr);
}

// Reads the echo and compares it with the generator; throws on the first
// difference, after shutting the socket down so that the writer stops too.
cosock::task<> reader(cosock::socket& sock, std::uint64_t seed, std::uint64_t bytes, totals& t) {
    generator data(seed);
    std::vector<char> buf(65536), want(65536);
    std::uint64_t got = 0;
    std::string failure;
    for (;;) {
        std::size_t n = co_await sock.recv(buf);
        if (n == 0) break;
        data.fill(want.data(), n);
        if (got + n > bytes) failure = "more bytes than were sent";
        else if (!std::equal(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), want.begin()))
            failure = "wrong byte within offset " + std::to_string(got) + ".." + std::to_string(got + n);
        if (!failure.empty()) break;
        got += n;
        t.received += n;
    }
    if (failure.empty() && got != bytes)
        failure = "stream ended after " + std::to_string(got) + " of " + std::to_string(bytes) + " bytes";
    if (!failure.empty()) {
        sock.shutdown(cosock::shut_rdwr);
        throw std::runtime_error(failure);
    }
}

cosock::task<> stream_one(cosock::address server, int id, std::uint64_t seed, std::uint64_t bytes,
                          std::size_t max_message, totals& t) {
    cosock::socket sock{*cosock::scheduler::current(), server.family()};
    try {
        co_await sock.connect(server);
        // Both directions at once: the server's buffers never fill up waiting for us.
        co_await cosock::when_all(reader(sock, seed, bytes, t), writer(sock, seed, bytes, max_message));
    } catch (const std::exception& e) {
        ++t.failed;
        std::printf("connection %d: %s\n", id, e.what());
    }
    t.sent += bytes;
}

cosock::task<> hold_one(cosock::address server, std::chrono::milliseconds hold, totals& t) {
    cosock::socket sock{*cosock::scheduler::current(), server.family()};
    try {
        co_await sock.connect(server);
        co_await sock.sendall(std::string_view("x"));
        char c;
        if (co_await sock.recv(std::span(&c, 1)) != 1) throw std::runtime_error("no echo");
        co_await cosock::sleep_for(hold);
    } catch (const std::exception& e) {
        if (t.failed++ < 10) std::printf("connection: %s\n", e.what());
    }
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, "--port P --connections N (--bytes TOTAL [--max-message B] [--seed S] | --hold S)",
                         {"--host", "--port", "--connections", "--bytes", "--max-message", "--seed", "--hold"});
    int port = static_cast<int>(opt.number("--port", -1, 1, 65535));
    if (port < 0) opt.fail("--port is required");
    int conns = static_cast<int>(opt.number("--connections", 1000, 1, 100000));
    std::uint64_t bytes = static_cast<std::uint64_t>(opt.number("--bytes", 64 << 20, 1, 1LL << 40));
    std::size_t max_message = static_cast<std::size_t>(opt.number("--max-message", 65536, 1, 1 << 24));
    std::uint64_t seed = static_cast<std::uint64_t>(opt.number("--seed", 1, 0, 1LL << 62));
    double hold = opt.seconds("--hold", 0);

    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    if (rlim_t(conns) + 64 > lim.rlim_cur) {
        std::fprintf(stderr, "soak_client: %d connections need more descriptors than the limit (%llu)\n", conns,
                     static_cast<unsigned long long>(lim.rlim_cur));
        return 3;
    }
    try {
        cosock::scheduler s{opt.backend()};
        cosock::address server{opt.text("--host", "127.0.0.1"), port};
        totals t;
        auto start = std::chrono::steady_clock::now();
        std::vector<cosock::task<>> all;
        for (int i = 0; i < conns; ++i) {
            if (hold > 0)
                all.push_back(hold_one(server, std::chrono::milliseconds(static_cast<long long>(hold * 1000)), t));
            else
                all.push_back(stream_one(server, i, seed + std::uint64_t(i),
                                         bytes / conns + (std::uint64_t(i) < bytes % conns), max_message, t));
        }
        s.run(cosock::when_all(std::move(all)));
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (hold > 0)
            std::printf("held %d connections for %g s: %d failed\n", conns, hold, t.failed);
        else
            std::printf("%d connections moved %llu bytes each way in %.2f s (%.0f MiB/s): %d failed\n", conns,
                        static_cast<unsigned long long>(t.received), secs, t.received / secs / (1 << 20), t.failed);
        return t.failed == 0 && (hold > 0 || t.received == bytes) ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "soak_client: %s\n", e.what());
        return 1;
    }
}
