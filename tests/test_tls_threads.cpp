// One ssl_context shared by schedulers on several threads (OpenSSL's
// SSL_CTX is shared by every connection made from it): a test of its own, so
// that the ThreadSanitizer stage (scripts/tsan.sh) runs it.
#include "backends.hpp"
#include "tls_support.hpp"

#include <array>
#include <string>
#include <thread>
#include <vector>

using cosock::task;

BACKEND_TEST("TLS: one ssl_context serves schedulers on several threads at once") {
    auto sctx = server_ctx();
    auto cctx = client_ctx();
    std::array<std::size_t, 4> echoed{};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < echoed.size(); ++i)
        threads.emplace_back([&, i] {
            cosock::scheduler s{B::value};
            s.run([](cosock::scheduler& s, cosock::ssl_context cctx, cosock::ssl_context sctx,
                     std::size_t& echoed) -> task<> {
                for (int round = 0; round < 20; ++round) {
                    tls_pair p = co_await connect_pair(s, cctx, sctx);
                    std::string data = pattern(20000, std::uint64_t(round));
                    auto r = co_await cosock::when_all(echo_until_closed(p.server), send_then_shutdown(p.client, data),
                                                       read_to_end(p.client));
                    if (std::get<2>(r) == data) echoed += data.size();
                }
            }(s, cctx, sctx, echoed[i]));
        });
    for (auto& t : threads) t.join();
    for (std::size_t n : echoed) CHECK(n == 20 * 20000);
}
