// cosock's TLS echo server under test: one scheduler, one task per
// connection, wrap_socket then recv and sendall over <cosock/tls.hpp>, with
// the TLS settings every bench program shares (tls_common.hpp).
//
//   echo_cosock_tls --backend NAME --port PORT --cert FILE --key FILE [--max-seconds S]
//
// A backend this build or this kernel refuses ends it at once with the reason
// on stderr and exit status 3; the runner shows that reason as "n/a".
#include "common.hpp"
#include "tls_common.hpp"

#include <cosock/cosock.hpp>
#include <cosock/tls.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

using cosock::task;

task<> handle(cosock::ssl_context ctx, cosock::socket conn) {
    cosock::wrap_options server{.server_side = true}; // named: GCC 12 refuses a braced list in co_await
    cosock::ssl_socket tls = co_await ctx.wrap_socket(std::move(conn), server);
    std::array<char, bench::echo_buffer_size> buf;
    while (std::size_t n = co_await tls.recv(buf)) co_await tls.sendall(std::string_view(buf.data(), n));
}

task<> serve(cosock::scheduler& s, cosock::socket srv, cosock::ssl_context ctx) {
    for (;;) {
        auto [conn, peer] = co_await srv.accept();
        conn.setsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay, 1);
        s.spawn(handle(ctx, std::move(conn)));
    }
}

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"backend", "port", "max-seconds", "cert", "key"},
                       "--backend NAME --port PORT (0: pick one) --cert FILE --key FILE [--max-seconds S]");
    bench::prepare_server(opt);
    std::unique_ptr<cosock::scheduler> s;
    try {
        s = std::make_unique<cosock::scheduler>(cosock::parse_backend(opt.text("backend", "automatic")));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 3;
    }
    try {
        cosock::ssl_context ctx = cosock::ssl_context::server();
        bench::tls::configure_server(ctx.native_handle(), opt, "echo_cosock_tls");
        cosock::socket srv{*s};
        srv.setsockopt(cosock::sol_socket, cosock::so_reuseaddr, 1);
        srv.bind({"127.0.0.1", int(opt.number("port", 0))});
        srv.listen();
        bench::announce(srv.getsockname().port(), "cosock-tls-" + std::string(s->backend_name()));
        // A connection that fails (a client leaving mid-handshake) ends alone; say it once.
        bool told = false;
        s->set_exception_handler([&told](std::exception_ptr e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                if (!std::exchange(told, true)) std::fprintf(stderr, "connection failed: %s\n", ex.what());
            }
        });
        s->run(serve(*s, std::move(srv), ctx));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_cosock_tls: %s\n", e.what());
        return 1;
    }
}
