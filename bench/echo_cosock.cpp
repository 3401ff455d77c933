// The cosock echo server under test: one scheduler, one task per connection.
//
//   echo_cosock --backend NAME --port PORT [--max-seconds S] [--buffer 64] [--threads N]
//
// --threads N (N > 1) serves from a scheduler_group instead: N threads, each
// with its own scheduler and its own SO_REUSEPORT listener on the same port,
// all made before the threads run (the kernel spreads the connections). The
// single-thread path stays the plain one-scheduler server, the reference
// every other row is compared with.
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
#include <vector>

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

// A connection that fails (e.g. select's FD_SETSIZE) ends alone; say it once
// per scheduler.
void report_first_failure(cosock::scheduler& s) {
    s.set_exception_handler([told = false](std::exception_ptr e) mutable {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            if (!std::exchange(told, true)) std::fprintf(stderr, "connection failed: %s\n", ex.what());
        }
    });
}

int serve_threads(const bench::options& opt, bool small, std::size_t threads) {
    std::unique_ptr<cosock::scheduler_group> g;
    try {
        g = std::make_unique<cosock::scheduler_group>(
            threads, cosock::group_options{.which = cosock::parse_backend(opt.text("backend", "automatic"))});
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 3;
    }
    try {
        // The schedulers run nowhere yet: their sockets may be made here.
        std::vector<cosock::socket> listeners;
        cosock::address at{"127.0.0.1", int(opt.number("port", 0))};
        for (std::size_t i = 0; i < threads; ++i) {
            listeners.push_back(cosock::create_server((*g)[i], at, {.reuse_port = true}));
            at = listeners.back().getsockname(); // port 0: the others take the port the first was given
        }
        bench::announce(at.port(), "cosock-" + std::string((*g)[0].backend_name()));
        g->run([&](cosock::scheduler& s, std::size_t i) -> task<> {
            report_first_failure(s);
            return serve(s, std::move(listeners[i]), small);
        });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_cosock: %s\n", e.what());
        return 1;
    }
    return 1; // serve() only ever ends with an error
}

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"backend", "port", "max-seconds", "buffer", "threads"},
                       "--backend NAME --port PORT (0: pick one) [--max-seconds S] [--buffer 64] [--threads N]");
    bool small = bench::small_buffer(opt);
    bench::prepare_server(opt);
    double threads = opt.number("threads", 1);
    if (threads < 1 || threads > 1024 || threads != double(std::size_t(threads))) {
        std::fprintf(stderr, "--threads must be a whole number from 1 to 1024\n");
        return 2;
    }
    if (threads > 1) return serve_threads(opt, small, std::size_t(threads));
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
