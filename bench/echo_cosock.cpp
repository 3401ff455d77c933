// The cosock echo server under test: one scheduler, one task per connection.
//
//   echo_cosock --backend NAME --port PORT [--max-seconds S] [--buffer 64]
//
// A backend this build or this kernel refuses ends it at once with the reason
// on stderr and exit status 3; the runner shows that reason as "n/a".
#include "common.hpp"

#include <cosock/cosock.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

using cosock::task;

template <std::size_t BufferSize>
task<> handle(cosock::socket conn) {
    std::array<char, BufferSize> buf;
    while (std::size_t n = co_await conn.recv(buf)) co_await conn.sendall(std::string_view(buf.data(), n));
}

task<> serve(cosock::scheduler& s, cosock::socket srv, bool small) {
    for (;;) {
        auto [conn, peer] = co_await srv.accept();
        conn.setsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay, 1);
        if (small)
            s.spawn(handle<bench::small_buffer_size>(std::move(conn)));
        else
            s.spawn(handle<bench::echo_buffer_size>(std::move(conn)));
    }
}

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"backend", "port", "max-seconds", "buffer"},
                       "--backend NAME --port PORT (0: pick one) [--max-seconds S] [--buffer 64]");
    bool small = bench::small_buffer(opt);
    bench::prepare_server(opt);
    std::unique_ptr<cosock::scheduler> s;
    try {
        s = std::make_unique<cosock::scheduler>(cosock::parse_backend(opt.text("backend", "automatic")));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 3;
    }
    try {
        cosock::socket srv{*s};
        srv.setsockopt(cosock::sol_socket, cosock::so_reuseaddr, 1);
        srv.bind({"127.0.0.1", int(opt.number("port", 0))});
        srv.listen();
        bench::announce(srv.getsockname().port(), "cosock-" + std::string(s->backend_name()));
        // A connection that fails (e.g. select's FD_SETSIZE) ends alone; say it once.
        bool told = false;
        s->set_exception_handler([&told](std::exception_ptr e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                if (!std::exchange(told, true)) std::fprintf(stderr, "connection failed: %s\n", ex.what());
            }
        });
        s->run(serve(*s, std::move(srv), small));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_cosock: %s\n", e.what());
        return 1;
    }
}
