// The program every consumer project in tests/consumers builds (see
// scripts/consumers.sh): a scheduler, a socket pair, a few bytes echoed over
// it by a coroutine, then the backend's name and COSOCK_VERSION_STRING.
//
//   consumer io_uring=yes|no [tls]
//
// io_uring=yes: the io_uring backend must be compiled in (a kernel that
// refuses it is reported, not failed); io_uring=no: it must not be, so
// scheduler{backend::io_uring} must throw "built without liburing". With
// "tls" (built with -DCONSUMER_TLS), an ssl_context is made too, which
// proves OpenSSL links. Exit status 0 only when all of that holds.
#include <cosock/cosock.hpp>
#ifdef CONSUMER_TLS
#include <cosock/tls.hpp>
#endif

#include <array>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>

namespace {

cosock::task<std::string> echo(cosock::scheduler& s) {
    auto [a, b] = cosock::socketpair(s);
    co_await a.sendall(std::string_view("ping"));
    std::array<char, 16> buf;
    std::size_t n = co_await b.recv(buf);
    co_await b.sendall(std::string_view(buf.data(), n));
    std::string back;
    while (back.size() < 4) {
        std::size_t m = co_await a.recv(buf);
        if (m == 0) break;
        back.append(buf.data(), m);
    }
    co_return back;
}

bool echo_on(cosock::scheduler& s) {
    std::string got = s.run(echo(s));
    std::printf("echo over %.*s: %s\n", int(s.backend_name().size()), s.backend_name().data(), got.c_str());
    return got == "ping";
}

} // namespace

int main(int argc, char** argv) {
    std::string want = argc > 1 ? argv[1] : "";
    if (want != "io_uring=yes" && want != "io_uring=no") {
        std::fprintf(stderr, "usage: consumer io_uring=yes|no [tls]\n");
        return 2;
    }
    bool ok = true;
    try {
        cosock::scheduler s;
        ok = echo_on(s) && ok;
        std::printf("cosock %s, backend %.*s\n", COSOCK_VERSION_STRING, int(s.backend_name().size()),
                    s.backend_name().data());
    } catch (const std::exception& e) {
        std::printf("FAIL: %s\n", e.what());
        return 1;
    }

#ifdef COSOCK_HAS_LIBURING
    bool compiled_in = true;
#else
    bool compiled_in = false;
#endif
    try {
        cosock::scheduler u{cosock::backend::io_uring};
        if (!compiled_in) {
            std::printf("FAIL: backend::io_uring works, but COSOCK_HAS_LIBURING is not defined\n");
            ok = false;
        } else {
            ok = echo_on(u) && ok;
        }
    } catch (const std::system_error& e) {
        bool refused_by_build = std::string(e.what()).find("built without liburing") != std::string::npos;
        if (compiled_in == refused_by_build) {
            std::printf("FAIL: io_uring compiled in: %s, yet: %s\n", compiled_in ? "yes" : "no", e.what());
            ok = false;
        } else if (compiled_in) {
            std::printf("io_uring compiled in, but this kernel refuses it: %s\n", e.what());
        }
    }
    std::printf("io_uring compiled in: %s\n", compiled_in ? "yes" : "no");
    if ((want == "io_uring=yes") != compiled_in) {
        std::printf("FAIL: expected %s\n", want.c_str());
        ok = false;
    }

    if (argc > 2 && std::string(argv[2]) == "tls") {
#ifdef CONSUMER_TLS
        cosock::ssl_context ctx = cosock::ssl_context::client();
        std::printf("tls: a client context (check_hostname %s)\n", ctx.check_hostname() ? "on" : "off");
#else
        std::printf("FAIL: tls asked for, but built without CONSUMER_TLS\n");
        ok = false;
#endif
    }
    std::printf(ok ? "ok\n" : "FAILED\n");
    return ok ? 0 : 1;
}
