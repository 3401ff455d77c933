// The same echo server written with standalone Asio's C++20 coroutines, the
// library cosock is most often compared with: one io_context on one thread,
// one coroutine per connection.
//
//   echo_asio --port PORT [--max-seconds S] [--buffer 64] [--threads N]
//
// --threads N (N > 1) is Asio's io_context-per-thread pattern (its server2
// example): N io_contexts, each run() on its own std::thread, each with its
// own acceptor on the same port (SO_REUSEPORT: the kernel spreads the
// connections), so a connection stays on one thread and no io_context locks.
#include "common.hpp"

#include <array>
#include <asio.hpp>
#include <cstdio>
#include <exception>
#include <memory>
#include <sys/socket.h>
#include <thread>
#include <vector>

namespace {

using asio::ip::tcp;

template <std::size_t BufferSize>
asio::awaitable<void> handle(tcp::socket conn) {
    std::array<char, BufferSize> buf;
    try {
        for (;;) {
            std::size_t n = co_await conn.async_read_some(asio::buffer(buf), asio::use_awaitable);
            co_await asio::async_write(conn, asio::buffer(buf.data(), n), asio::use_awaitable);
        }
    } catch (const std::system_error&) { // end of stream (asio::error::eof) or a reset
    }
}

asio::awaitable<void> serve(tcp::acceptor& acceptor, bool small) {
    for (;;) {
        tcp::socket conn = co_await acceptor.async_accept(asio::use_awaitable);
        conn.set_option(tcp::no_delay(true));
        if (small)
            asio::co_spawn(acceptor.get_executor(), handle<bench::small_buffer_size>(std::move(conn)), asio::detached);
        else
            asio::co_spawn(acceptor.get_executor(), handle<bench::echo_buffer_size>(std::move(conn)), asio::detached);
    }
}

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

int serve_threads(const bench::options& opt, bool small, std::size_t threads) {
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    tcp::endpoint at{asio::ip::address_v4::loopback(), asio::ip::port_type(opt.number("port", 0))};
    for (std::size_t i = 0; i < threads; ++i) {
        contexts.push_back(std::make_unique<asio::io_context>(1)); // one thread each: no locking
        auto& a = *acceptors.emplace_back(std::make_unique<tcp::acceptor>(*contexts.back()));
        a.open(at.protocol());
        a.set_option(tcp::acceptor::reuse_address(true));
        a.set_option(reuse_port(true));
        a.bind(at);
        a.listen();
        at = a.local_endpoint(); // port 0: the others take the port the first was given
        asio::co_spawn(*contexts.back(), serve(a, small), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e); // out of run(), into the thread's catch
        });
    }
    bench::announce(at.port(), "asio");
    std::vector<std::thread> running;
    for (auto& ctx : contexts)
        running.emplace_back([&ctx] {
            try {
                ctx->run();
            } catch (const std::exception& e) {
                std::fprintf(stderr, "echo_asio: %s\n", e.what());
                std::exit(1);
            }
        });
    for (std::thread& t : running) t.join();
    return 1; // serve() only ever ends with an error
}

} // namespace

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"port", "max-seconds", "buffer", "threads"},
                       "--port PORT [--max-seconds S] [--buffer 64] [--threads N]");
    bool small = bench::small_buffer(opt);
    bench::prepare_server(opt);
    double threads = opt.number("threads", 1);
    if (threads < 1 || threads > 1024 || threads != double(std::size_t(threads))) {
        std::fprintf(stderr, "--threads must be a whole number from 1 to 1024\n");
        return 2;
    }
    try {
        if (threads > 1) return serve_threads(opt, small, std::size_t(threads));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_asio: %s\n", e.what());
        return 1;
    }
    try {
        asio::io_context ctx{1}; // one thread: asio may skip its locking
        tcp::acceptor acceptor(ctx, {asio::ip::address_v4::loopback(), asio::ip::port_type(opt.number("port", 0))});
        bench::announce(acceptor.local_endpoint().port(), "asio");
        asio::co_spawn(ctx, serve(acceptor, small), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e); // out of ctx.run(), into the catch below
        });
        ctx.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_asio: %s\n", e.what());
        return 1;
    }
}
