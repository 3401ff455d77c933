// An echo server and its clients in one process.
//
//   echo [--backend automatic|select|poll|epoll|io_uring] [--clients N] [--serve PORT]
//
// By default it starts the server on a free loopback port, runs N clients
// against it, prints what they got back and exits. With --serve it only serves,
// forever, on PORT (try: nc 127.0.0.1 PORT).
#include <cosock/cosock.hpp>

#include "options.hpp"

#include <array>
#include <cstdio>
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

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--clients N] [--serve PORT]", {"--clients", "--serve"});
    int clients = static_cast<int>(opt.number("--clients", 3, 0, 100000));
    int port = static_cast<int>(opt.number("--serve", -1, 0, 65535));
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    try {
        cosock::scheduler s{opt.backend()};
        if (port >= 0) {
            cosock::socket srv{s};
            srv.setsockopt(cosock::sol_socket, cosock::so_reuseaddr, 1);
            srv.bind({"127.0.0.1", port});
            srv.listen();
            std::printf("serving on %s with %s\n", srv.getsockname().to_string().c_str(),
                        std::string(s.backend_name()).c_str());
            std::fflush(stdout);
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
