// The same echo server written with standalone Asio's C++20 coroutines, the
// library cosock is most often compared with: one io_context on one thread,
// one coroutine per connection.
//
//   echo_asio --port PORT [--max-seconds S] [--buffer 64]
#include "common.hpp"

#include <array>
#include <asio.hpp>
#include <cstdio>
#include <exception>

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

} // namespace

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"port", "max-seconds", "buffer"}, "--port PORT [--max-seconds S] [--buffer 64]");
    bool small = bench::small_buffer(opt);
    bench::prepare_server(opt);
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
