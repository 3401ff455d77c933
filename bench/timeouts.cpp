// Timeouts and cancellations at scale: N recvs on silent socket pairs, each with
// a 50 ms socket timeout, all due at once; how late each ends past its own
// deadline (median and max). Then a scheduler destroyed with N operations in
// flight: how long the destructor takes. One JSON line per run.
//
//   timeouts --backend io_uring [--count 10000]
#include <cosock/cosock.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <sys/resource.h>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

double ms(clk::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

cosock::task<> late_recv(cosock::socket& sock, std::vector<double>& late) {
    std::array<char, 8> buf;
    sock.settimeout(50ms);
    auto start = clk::now();
    try {
        co_await sock.recv(buf);
    } catch (const cosock::timeout_error&) {
    }
    late.push_back(ms(clk::now() - start - 50ms));
}

cosock::task<> recv_forever(cosock::socket& sock) {
    std::array<char, 8> buf;
    co_await sock.recv(buf);
}

std::vector<std::pair<cosock::socket, cosock::socket>> pairs(cosock::scheduler& s, int sockets) {
    std::vector<std::pair<cosock::socket, cosock::socket>> v;
    for (int i = 0; i < sockets / 2; ++i) v.push_back(cosock::socketpair(s));
    return v;
}

} // namespace

int main(int argc, char** argv) {
    cosock::backend backend = cosock::backend::automatic;
    int count = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--backend") == 0) backend = cosock::parse_backend(argv[i + 1]);
        if (std::strcmp(argv[i], "--count") == 0) count = std::atoi(argv[i + 1]);
    }
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    if (rlim_t(count) + 64 > lim.rlim_cur) count = int(lim.rlim_cur) - 64;

    std::vector<double> late;
    std::string name;
    {
        cosock::scheduler s{backend};
        name = s.backend_name();
        auto socks = pairs(s, count);
        for (auto& [a, b] : socks)
            for (auto* sock : {&a, &b}) s.spawn(late_recv(*sock, late));
        s.run();
    }
    std::sort(late.begin(), late.end());
    double destroy = 0;
    {
        auto s = std::make_unique<cosock::scheduler>(backend);
        auto socks = pairs(*s, count);
        for (auto& [a, b] : socks)
            for (auto* sock : {&a, &b}) s->spawn(recv_forever(*sock));
        s->run([](cosock::scheduler& s) -> cosock::task<> { co_await s.yield(); }(*s));
        auto start = clk::now();
        s.reset(); // the sockets outlive it
        destroy = ms(clk::now() - start);
    }
    std::printf("{\"backend\": \"%s\", \"count\": %zu, \"late_median_ms\": %.2f, \"late_max_ms\": %.2f, "
                "\"destroy_ms\": %.2f}\n",
                name.c_str(), late.size(), late[late.size() / 2], late.back(), destroy);
}
