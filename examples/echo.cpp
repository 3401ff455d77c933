// An echo server and its clients in one process.
//
//   echo [--backend automatic|select|poll|epoll|io_uring] [--clients N] [--serve PORT]
//
// By default it starts the server on a free loopback port, runs N clients
// against it, prints what they got back and exits. With --serve it only serves,
// forever, on PORT (try: nc 127.0.0.1 PORT).
#include <cosock/cosock.hpp>

#include <array>
#include <charconv>
#include <stdexcept>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using cosock::task;

task<> handle(cosock::socket conn) {
    std::array<char, 4096> buf;
    while (std::size_t n = co_await conn.recv(buf)) // 0: the peer closed
        co_await conn.sendall(std::string_view(buf.data(), n));
}

task<> serve(cosock::scheduler& s, cosock::socket srv) {
    for (;;) {
        auto [conn, peer] = co_await srv.accept();
        s.spawn(handle(std::move(conn)));
    }
}

task<bool> client(cosock::scheduler& s, cosock::address server, int id) {
    cosock::socket sock{s, server.family()};
    co_await sock.connect(server);
    std::string msg = "hello from client " + std::to_string(id);
    co_await sock.sendall(msg);
    sock.shutdown(cosock::shut_wr); // tells the server we are done
    std::string reply;
    std::array<char, 256> buf;
    while (std::size_t n = co_await sock.recv(buf)) reply.append(buf.data(), n);
    std::printf("client %d got back: %s\n", id, reply.c_str());
    co_return reply == msg;
}

task<int> demo(cosock::scheduler& s, int clients) {
    cosock::socket srv{s};
    srv.setsockopt(cosock::sol_socket, cosock::so_reuseaddr, 1);
    srv.bind({"127.0.0.1", 0});
    srv.listen();
    cosock::address where = srv.getsockname();
    std::printf("echo server on %s, backend %s\n", where.to_string().c_str(), std::string(s.backend_name()).c_str());
    s.spawn(serve(s, std::move(srv)));
    int ok = 0;
    for (int i = 1; i <= clients; ++i) ok += co_await client(s, where, i);
    co_return ok;
}

int number(std::string_view text) {
    int v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size())
        throw std::invalid_argument("not a number: '" + std::string(text) + "'");
    return v;
}

int usage(const char* argv0, const char* problem) {
    std::fprintf(stderr, "echo: %s\nusage: %s [--backend NAME] [--clients N] [--serve PORT]\n", problem, argv0);
    return 2;
}

int main(int argc, char** argv) {
    cosock::backend which = cosock::backend::automatic;
    int clients = 3, port = -1;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (i + 1 >= argc) return usage(argv[0], "an option is missing its value");
        try {
            if (arg == "--backend") which = cosock::parse_backend(argv[++i]);
            else if (arg == "--clients") clients = number(argv[++i]);
            else if (arg == "--serve") port = number(argv[++i]);
            else return usage(argv[0], "unknown option");
        } catch (const std::exception& e) {
            return usage(argv[0], e.what());
        }
    }
    if (clients < 0 || port > 65535) return usage(argv[0], "--clients must be >= 0 and --serve PORT <= 65535");
    try {
        cosock::scheduler s{which};
        if (port >= 0) {
            cosock::socket srv{s};
            srv.setsockopt(cosock::sol_socket, cosock::so_reuseaddr, 1);
            srv.bind({"127.0.0.1", port});
            srv.listen();
            std::printf("serving on %s with %s\n", srv.getsockname().to_string().c_str(),
                        std::string(s.backend_name()).c_str());
            s.run(serve(s, std::move(srv)));
            return 0;
        }
        int ok = s.run(demo(s, clients));
        std::printf("%d of %d clients got their message back\n", ok, clients);
        return ok == clients ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo: %s\n", e.what());
        return 1;
    }
}
