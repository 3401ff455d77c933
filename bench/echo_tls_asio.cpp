// The TLS echo server written with standalone Asio: asio::ssl::stream over a
// tcp::socket, C++20 coroutines (co_spawn + use_awaitable), one io_context on
// one thread, one coroutine per connection: handshake, then read_some and
// write back. TLS settings: bench/tls_common.hpp, applied to the context's
// native handle (TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, no session tickets).
// Asio drives OpenSSL through a memory BIO and its own 17 KiB buffers, and
// sets SSL_MODE_RELEASE_BUFFERS on each stream; those are its choices, left as
// they are.
//
//   echo_tls_asio --port PORT --cert FILE --key FILE [--max-seconds S]
#include "common.hpp"
#include "tls_common.hpp"

#include <array>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdio>
#include <exception>
#include <system_error>

// GCC 12 at -O2 warns (-Wmismatched-new-delete) that the coroutine frame of
// handle() is freed by asio's awaitable_frame_base::operator delete although
// it came from another operator new; asio allocates and frees frames through
// the same class-specific pair, and the warning is a known false positive of
// GCC's inlining here (clang does not warn).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

using asio::ip::tcp;
using tls_stream = asio::ssl::stream<tcp::socket>;

asio::awaitable<void> handle(tls_stream stream) {
    std::array<char, bench::echo_buffer_size> buf;
    try {
        co_await stream.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
        for (;;) {
            std::size_t n = co_await stream.async_read_some(asio::buffer(buf), asio::use_awaitable);
            co_await asio::async_write(stream, asio::buffer(buf.data(), n), asio::use_awaitable);
        }
    } catch (const std::system_error&) { // the peer left (at any point) or broke the protocol
    }
}

asio::awaitable<void> serve(tcp::acceptor& acceptor, asio::ssl::context& ctx) {
    for (;;) {
        tcp::socket conn = co_await acceptor.async_accept(asio::use_awaitable);
        conn.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), handle(tls_stream(std::move(conn), ctx)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"port", "max-seconds", "cert", "key"}, bench::tls::server_usage);
    bench::prepare_server(opt);
    try {
        asio::ssl::context ctx(asio::ssl::context::tls_server);
        bench::tls::configure_server(ctx.native_handle(), opt, "echo_tls_asio");
        asio::io_context io{1}; // one thread: asio may skip its locking
        tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), asio::ip::port_type(opt.number("port", 0))});
        bench::announce(acceptor.local_endpoint().port(), "asio-tls");
        asio::co_spawn(io, serve(acceptor, ctx), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e); // out of io.run(), into the catch below
        });
        io.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_tls_asio: %s\n", e.what());
        return 1;
    }
}
