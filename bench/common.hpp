// What the bench programs share: `--name value` options, the descriptor limit,
// a lifetime limit, and the line that tells the runner which port was picked.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <netinet/in.h>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bench {

/// Every server echoes through a buffer of this size, so for a given message
/// they all make the same number of recv/send calls.
inline constexpr std::size_t echo_buffer_size = 16 * 1024;
/// The memory cell runs the coroutine servers with this buffer instead
/// (`--buffer 64`), so that their figure is the library's own memory per
/// connection, not the user's buffer.
inline constexpr std::size_t small_buffer_size = 64;

/// `--name value` pairs, and `--flag` alone for the names in `flags`. Any
/// other argument prints `usage` and exits with 2.
class options {
  public:
    options(int argc, char** argv, std::initializer_list<std::string_view> known, const char* usage,
            std::initializer_list<std::string_view> flags = {}) {
        auto named = [](std::string_view arg, std::initializer_list<std::string_view> names) {
            bool found = false;
            for (std::string_view k : names) found = found || (arg.starts_with("--") && arg.substr(2) == k);
            return found;
        };
        for (int i = 1; i < argc; ++i) {
            std::string_view name = argv[i];
            if (named(name, flags)) {
                values_[std::string(name.substr(2))] = "1";
                continue;
            }
            if (!named(name, known) || i + 1 >= argc) {
                std::fprintf(stderr, "usage: %s %s\n", argv[0], usage);
                std::exit(2);
            }
            values_[std::string(name.substr(2))] = argv[++i];
        }
    }
    bool has(const std::string& name) const { return values_.count(name) != 0; }
    std::string text(const std::string& name, std::string fallback) const {
        auto it = values_.find(name);
        return it == values_.end() ? fallback : it->second;
    }
    double number(const std::string& name, double fallback) const {
        auto it = values_.find(name);
        return it == values_.end() ? fallback : std::strtod(it->second.c_str(), nullptr);
    }

  private:
    std::map<std::string, std::string> values_;
};

/// The --buffer option: echo_buffer_size unless it names small_buffer_size.
inline bool small_buffer(const options& opt) {
    double b = opt.number("buffer", double(echo_buffer_size));
    if (b != double(echo_buffer_size) && b != double(small_buffer_size)) {
        std::fprintf(stderr, "--buffer must be %zu or %zu\n", echo_buffer_size, small_buffer_size);
        std::exit(2);
    }
    return b == double(small_buffer_size);
}

/// Raises the soft descriptor limit to the hard one; returns the new limit.
inline long raise_fd_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
    return long(lim.rlim_cur);
}

/// What every server does first: no SIGPIPE, as many descriptors as allowed,
/// and SIGALRM ends it after `max_seconds` so a forgotten server never lingers.
inline void prepare_server(const options& opt) {
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    alarm(unsigned(opt.number("max-seconds", 600)));
}

/// Tells the runner the port (it waits for this line before starting the load).
inline void announce(int port, std::string_view what) {
    std::printf("port %d %.*s\n", port, int(what.size()), what.data());
    std::fflush(stdout);
}

/// A listening TCP socket on 127.0.0.1:port (0: the kernel picks one), for the
/// servers written on raw system calls. Exits with a message if it fails.
inline int listen_loopback(int port, int type_flags = 0) {
    int fd = socket(AF_INET, SOCK_STREAM | type_flags, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(std::uint16_t(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0) {
        std::fprintf(stderr, "listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
        std::exit(1);
    }
    return fd;
}

/// The port a socket is bound to.
inline int local_port(int fd) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin_port);
}

inline constexpr const char* server_usage = "--port PORT (0: pick one) [--max-seconds S]";

} // namespace bench
