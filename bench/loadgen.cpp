// The load generator: raw epoll on one thread, no cosock, so it measures the
// servers and not itself. Closed loop: each connection has one message in
// flight; the next goes out once the echo is complete and every byte matched.
//
//   loadgen --port P [--connections N] [--size BYTES] [--warmup S] [--seconds S]
//           [--server-pid PID] [--idle-seconds S] [--tls [--cafile FILE]] [--handshakes]
//
// All connections are opened, and each completes one round trip, before the
// warm-up; only round trips completing in the timed window count. With
// --server-pid it reads the server's CPU time (/proc/PID/stat) at both ends of
// the window, in all and in user mode alone, and each of its threads' too
// (/proc/PID/task/TID/stat), to show how evenly a multi-threaded server shares
// the work. With --idle-seconds it measures
// memory instead: server RSS before connecting, and after one round trip per
// connection and that long idle.
// With --tls every connection speaks TLS 1.3 (bench/tls_common.hpp: one suite,
// one group, no tickets) through OpenSSL on the same non-blocking sockets,
// handshaking once when it connects; the server's certificate is not checked
// unless --cafile names the certificate to trust (then also its name,
// localhost). With --handshakes (which implies --tls) each of the N
// connections is instead a closed loop of whole TLS connections: connect,
// handshake, one message echoed, close_notify, close, and again; a "round
// trip" is then such a connection, and its latency runs from connect() to the
// echo's last byte. "tickets" counts the session tickets servers sent (the
// settings ask for none).
// Prints one JSON line; on any error (refused, closed, wrong byte) a message on
// stderr and exit status 1, or 3 if descriptor limits forbid the run.
#include "common.hpp"
#ifdef BENCH_TLS
#include "tls_common.hpp"
#endif

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sstream>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void vdie(int status, const char* fmt, std::va_list ap) {
    std::fputs("loadgen: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    std::exit(status);
}

/// A failed run: exit status 1.
[[noreturn]] void die(const char* fmt, ...) {
    std::va_list ap;
    va_start(ap, fmt);
    vdie(1, fmt, ap);
}

/// A run this machine cannot do (descriptor limits): exit status 3.
[[noreturn]] void cannot_run(const char* fmt, ...) {
    std::va_list ap;
    va_start(ap, fmt);
    vdie(3, fmt, ap);
}

std::int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// CPU time in seconds, in user mode and in the kernel.
struct cpu_time {
    double user = 0, system = 0;
    double total() const { return user + system; }
    cpu_time operator-(const cpu_time& o) const { return {user - o.user, system - o.system}; }
};

/// CPU time from a /proc stat file (fields 14 and 15); false if it is gone.
bool read_stat_cpu(const std::string& path, cpu_time& t) {
    std::ifstream f(path);
    std::string s((std::istreambuf_iterator<char>(f)), {});
    if (s.empty()) return false;
    std::istringstream rest(s.substr(s.rfind(')') + 2)); // the name may hold spaces
    std::string field;
    double tick = double(sysconf(_SC_CLK_TCK));
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) t.user = double(std::stoul(field)) / tick;
        if (i == 15) t.system = double(std::stoul(field)) / tick;
    }
    return true;
}

/// A process's CPU time, all threads (/proc/PID/stat).
cpu_time process_cpu(long pid) {
    cpu_time t;
    if (!read_stat_cpu("/proc/" + std::to_string(pid) + "/stat", t))
        die("cannot read /proc/%ld/stat: is the server running?", pid);
    return t;
}

/// Each thread's CPU time (utime + stime of /proc/PID/task/TID/stat), by TID.
std::map<long, double> thread_cpu(long pid) {
    std::map<long, double> out;
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        long tid = std::atol(e->d_name);
        cpu_time t;
        if (tid > 0 && read_stat_cpu(dir + "/" + e->d_name + "/stat", t)) out[tid] = t.total();
    }
    closedir(d);
    return out;
}

/// The CPU seconds each thread used between two readings, as a JSON array.
std::string thread_cpu_json(const std::map<long, double>& before, const std::map<long, double>& after) {
    std::string out = "[";
    for (auto& [tid, seconds] : after) {
        auto it = before.find(tid);
        char text[32];
        std::snprintf(text, sizeof text, "%.2f", seconds - (it == before.end() ? 0.0 : it->second));
        out += (out.size() > 1 ? ", " : "") + std::string(text);
    }
    return out + "]";
}

cpu_time own_cpu() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto sec = [](timeval t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return {sec(ru.ru_utime), sec(ru.ru_stime)};
}

/// User-mode CPU time of the whole machine, in seconds. Minus that of the
/// server and of this process, it shows other work sharing the CPUs (a build,
/// say): echo servers spend little time in user mode, compilers nearly all.
/// (Kernel time is no use for this: interrupt and idle accounting blur it.)
double machine_user_seconds() {
    std::ifstream f("/proc/stat");
    std::string cpu;
    unsigned long user = 0, nice = 0;
    f >> cpu >> user >> nice;
    return double(user + nice) / double(sysconf(_SC_CLK_TCK));
}

/// A line of /proc/PID/<file> starting with `key`, the number after it.
long proc_number(long pid, const char* file, const std::string& key) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/" + file);
    for (std::string line; std::getline(f, line);)
        if (line.starts_with(key)) return std::atol(line.c_str() + key.size());
    die("no '%s' in /proc/%ld/%s", key.c_str(), pid, file);
}

#ifdef BENCH_TLS
std::size_t tickets = 0; // session tickets received, all connections

/// The client's context: the shared settings, read-ahead (one recv brings as
/// many records as are there), and either no check of the server's
/// certificate or a check against `cafile`.
SSL_CTX* client_context(const std::string& cafile) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) bench::tls::die("loadgen", "SSL_CTX_new");
    bench::tls::restrict(ctx, "loadgen");
    SSL_CTX_set_read_ahead(ctx, 1);
    if (cafile.empty()) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
        if (SSL_CTX_load_verify_locations(ctx, cafile.c_str(), nullptr) != 1)
            bench::tls::die("loadgen", cafile.c_str());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    // Count the tickets servers send (none are asked for), keep none.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, [](SSL*, SSL_SESSION*) {
        ++tickets;
        return 0;
    });
    return ctx;
}

/// A client connection on fd, named localhost (SNI, and the name checked
/// when the context checks certificates).
SSL* new_ssl(SSL_CTX* ctx, int fd) {
    SSL* ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) bench::tls::die("loadgen", "SSL_new");
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_CTX_get_verify_mode(ctx) != SSL_VERIFY_NONE) SSL_set1_host(ssl, "localhost");
    SSL_set_connect_state(ssl);
    return ssl;
}

/// True if an SSL call that returned `ret` only has to wait for the socket.
bool tls_waits(SSL* ssl, int ret) {
    int e = SSL_get_error(ssl, ret);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/// Why an SSL call that returned `ret` failed, in words.
std::string tls_failure(SSL* ssl, int ret) {
    int saved = errno;
    switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_ZERO_RETURN:
        return "closed by the server (close_notify)";
    case SSL_ERROR_SYSCALL:
        return saved != 0 ? std::strerror(saved) : std::string("closed by the server");
    default:
        return bench::tls::last_error();
    }
}
#else
using SSL = void;
using SSL_CTX = void;
#endif

struct conn {
    int fd = -1;
    std::uint32_t seq = 0;    // messages sent so far; picks the bytes of the next
    std::size_t sent = 0;     // of the message in flight
    std::size_t received = 0; // of its echo, every byte checked
    std::int64_t started = 0; // when it went out
    bool waiting_out = false; // registered for EPOLLOUT too
    bool echoed_once = false;
};

/// A connection of the TLS loop.
struct tls_conn : conn {
    SSL* ssl = nullptr;
};

/// The closed loop of --connections connections; Tls: through OpenSSL. The
/// plain instance is compiled without any of the TLS code, so --tls costs the
/// plain runs nothing.
template <bool Tls>
class load {
    using conn_type = std::conditional_t<Tls, tls_conn, conn>;

  public:
    load(int port, std::size_t size, bool keep_going, SSL_CTX* tls = nullptr)
        : size_(size), keep_going_(keep_going), tls_(tls), buf_(size), ep_(epoll_create1(0)) {
        // Each message is a window into this pattern at an offset that changes
        // per connection and per message, so a misplaced byte cannot match.
        pattern_.resize(size + 256);
        for (std::size_t i = 0; i < pattern_.size(); ++i) pattern_[i] = char((i * 131 + (i >> 8) * 7 + 17) & 0xff);
        addr_.sin_family = AF_INET;
        addr_.sin_port = htons(std::uint16_t(port));
        addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }

    void connect_all(std::size_t n) {
        conns_.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0) die("socket #%zu: %s", i, std::strerror(errno));
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) < 0)
                die("connect #%zu: %s", i, std::strerror(errno));
#ifdef BENCH_TLS
            if constexpr (Tls) { // handshake while the socket still blocks
                conns_[i].ssl = new_ssl(tls_, fd);
                if (int r = SSL_connect(conns_[i].ssl); r != 1)
                    die("TLS handshake #%zu: %s", i, tls_failure(conns_[i].ssl, r).c_str());
            }
#endif
            fcntl(fd, F_SETFL, O_NONBLOCK);
            conns_[i].fd = fd;
            watch(i, EPOLLIN, EPOLL_CTL_ADD);
        }
    }

    /// Opens the connections and has one echo back on each.
    void start(std::size_t n) {
        connect_all(n);
        echo_once_each(60);
    }

    /// Sends the first message everywhere and runs until every connection has
    /// had its echo back (at most `limit_s` seconds).
    void echo_once_each(double limit_s) {
        std::int64_t start = now_ns(), limit = start + std::int64_t(limit_s * 1e9);
        for (std::size_t i = 0; i < conns_.size(); ++i) start_message(i, start);
        while (echoed_once_ < conns_.size()) {
            if (now_ns() > limit)
                die("only %zu of %zu connections had an echo within %.0f s", echoed_once_, conns_.size(), limit_s);
            turn(100);
        }
    }

    /// Runs the closed loop for `seconds`; latencies are kept when `record`.
    void run_for(double seconds, bool record) {
        record_ = record;
        std::int64_t end = now_ns() + std::int64_t(seconds * 1e9);
        while (now_ns() < end) turn(10);
        record_ = false;
    }

    std::vector<std::int64_t>& latencies() { return latencies_; }

  private:
    const char* message(std::size_t i) const { return pattern_.data() + (conns_[i].seq * 97 + i) % 256; }

    void watch(std::size_t i, unsigned events, int op) {
        epoll_event ev{events, {.u64 = i}};
        if (epoll_ctl(ep_, op, conns_[i].fd, &ev) < 0) die("epoll_ctl: %s", std::strerror(errno));
    }

    void start_message(std::size_t i, std::int64_t now) {
        conn_type& c = conns_[i];
        c.sent = c.received = 0;
        c.started = now;
        send_rest(i);
    }

    void send_rest(std::size_t i) {
#ifdef BENCH_TLS
        if constexpr (Tls) return tls_send_rest(i);
#endif
        conn_type& c = conns_[i];
        const char* msg = message(i);
        while (c.sent < size_) {
            ssize_t w = send(c.fd, msg + c.sent, size_ - c.sent, MSG_NOSIGNAL);
            if (w < 0 && errno == EAGAIN) break;
            if (w < 0) die("send on connection %zu: %s", i, std::strerror(errno));
            c.sent += std::size_t(w);
        }
        bool want_out = c.sent < size_;
        if (want_out != c.waiting_out) watch(i, want_out ? EPOLLIN | EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
        c.waiting_out = want_out;
    }

    void receive(std::size_t i) {
#ifdef BENCH_TLS
        if constexpr (Tls) return tls_receive(i);
#endif
        conn_type& c = conns_[i];
        ssize_t r = recv(c.fd, buf_.data(), size_ - c.received, 0);
        if (r < 0 && errno == EAGAIN) return;
        if (r < 0) die("recv on connection %zu: %s (after %u messages)", i, std::strerror(errno), c.seq);
        if (r == 0) die("connection %zu closed by the server (after %u messages)", i, c.seq);
        if (c.received + std::size_t(r) > c.sent)
            die("connection %zu: the server sent bytes before they were sent to it", i);
        if (std::memcmp(buf_.data(), message(i) + c.received, std::size_t(r)) != 0)
            die("connection %zu: wrong bytes in the echo of message %u", i, c.seq);
        c.received += std::size_t(r);
        if (c.received < size_) return;
        std::int64_t now = now_ns();
        if (record_) latencies_.push_back(now - c.started);
        if (!c.echoed_once) ++echoed_once_;
        c.echoed_once = true;
        ++c.seq;
        if (keep_going_) start_message(i, now);
    }

#ifdef BENCH_TLS
    // As the end of receive: r more bytes of the echo are in buf_; checks
    // them, and once the echo is complete counts it and sends the next
    // message. (receive keeps its own copy: sharing this one changed how the
    // plain loop compiled, and it cost a few more instructions per round trip.)
    void received(std::size_t i, std::size_t r) {
        conn_type& c = conns_[i];
        if (c.received + r > c.sent) die("connection %zu: the server sent bytes before they were sent to it", i);
        if (std::memcmp(buf_.data(), message(i) + c.received, r) != 0)
            die("connection %zu: wrong bytes in the echo of message %u", i, c.seq);
        c.received += r;
        if (c.received < size_) return;
        std::int64_t now = now_ns();
        if (record_) latencies_.push_back(now - c.started);
        if (!c.echoed_once) ++echoed_once_;
        c.echoed_once = true;
        ++c.seq;
        if (keep_going_) start_message(i, now);
    }

    // As send_rest, through OpenSSL (partial writes are on: SSL_write may
    // take part of the message; a write that must wait is retried with the
    // same bytes).
    void tls_send_rest(std::size_t i) {
        conn_type& c = conns_[i];
        const char* msg = message(i);
        while (c.sent < size_) {
            int w = SSL_write(c.ssl, msg + c.sent, int(size_ - c.sent));
            if (w <= 0 && tls_waits(c.ssl, w)) break;
            if (w <= 0) die("TLS send on connection %zu: %s", i, tls_failure(c.ssl, w).c_str());
            c.sent += std::size_t(w);
        }
        bool want_out = c.sent < size_;
        if (want_out != c.waiting_out) watch(i, want_out ? EPOLLIN | EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
        c.waiting_out = want_out;
    }

    // As receive, through OpenSSL. Read-ahead is on, so records OpenSSL has
    // already read from the socket are read on without waiting for epoll.
    void tls_receive(std::size_t i) {
        conn_type& c = conns_[i];
        do {
            int r = SSL_read(c.ssl, buf_.data(), int(size_ - c.received));
            if (r <= 0 && tls_waits(c.ssl, r)) return;
            if (r <= 0)
                die("TLS recv on connection %zu: %s (after %u messages)", i, tls_failure(c.ssl, r).c_str(), c.seq);
            received(i, std::size_t(r));
        } while (SSL_has_pending(c.ssl));
    }
#endif

    void turn(int timeout_ms) {
        epoll_event events[1024];
        int n = epoll_wait(ep_, events, 1024, timeout_ms);
        if (n < 0 && errno != EINTR) die("epoll_wait: %s", std::strerror(errno));
        for (int k = 0; k < n; ++k) {
            std::size_t i = events[k].data.u64;
            if (events[k].events & EPOLLOUT) send_rest(i);
            if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(i);
        }
    }

    std::size_t size_;
    bool keep_going_;
    [[maybe_unused]] SSL_CTX* tls_; // with Tls
    bool record_ = false;
    std::vector<char> pattern_;
    std::vector<char> buf_;
    std::vector<conn_type> conns_;
    std::vector<std::int64_t> latencies_;
    std::size_t echoed_once_ = 0;
    sockaddr_in addr_{};
    int ep_;
};

#ifdef BENCH_TLS
/// --handshakes: `n` closed loops of whole TLS connections. Each connects
/// (non-blocking), handshakes, sends one message, checks its echo, sends
/// close_notify and closes, then starts again; everything is driven by
/// level-triggered epoll from what OpenSSL says it waits for.
class handshake_load {
  public:
    handshake_load(int port, std::size_t size, std::size_t n, SSL_CTX* ctx)
        : size_(size), ctx_(ctx), slots_(n), buf_(size), ep_(epoll_create1(0)) {
        pattern_.resize(size + 256);
        for (std::size_t i = 0; i < pattern_.size(); ++i) pattern_[i] = char((i * 131 + (i >> 8) * 7 + 17) & 0xff);
        addr_.sin_family = AF_INET;
        addr_.sin_port = htons(std::uint16_t(port));
        addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }

    /// Starts the n loops (the constructor's n).
    void start(std::size_t) {
        for (std::size_t i = 0; i < slots_.size(); ++i) start(i, now_ns());
    }

    void run_for(double seconds, bool record) {
        record_ = record;
        std::int64_t end = now_ns() + std::int64_t(seconds * 1e9);
        while (now_ns() < end) turn(10);
        record_ = false;
    }

    std::vector<std::int64_t>& latencies() { return latencies_; }

  private:
    enum class stage { connecting, handshaking, sending, receiving };
    struct slot {
        int fd = -1;
        SSL* ssl = nullptr;
        stage at = stage::connecting;
        std::uint32_t seq = 0; // connections this slot completed
        std::size_t sent = 0, received = 0;
        std::int64_t started = 0;
        unsigned interest = 0;
    };

    const char* message(std::size_t i) const { return pattern_.data() + (slots_[i].seq * 97 + i) % 256; }

    void set_interest(std::size_t i, unsigned events) {
        slot& s = slots_[i];
        if (s.interest == events) return;
        epoll_event ev{events, {.u64 = i}};
        if (epoll_ctl(ep_, s.interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s.fd, &ev) < 0)
            die("epoll_ctl: %s", std::strerror(errno));
        s.interest = events;
    }

    void start(std::size_t i, std::int64_t now) {
        slot& s = slots_[i];
        s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (s.fd < 0) die("socket: %s", std::strerror(errno));
        int one = 1;
        setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s.started = now;
        s.sent = s.received = 0;
        s.interest = 0;
        s.ssl = new_ssl(ctx_, s.fd);
        if (connect(s.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) == 0) {
            s.at = stage::handshaking;
            step(i);
        } else if (errno == EINPROGRESS) {
            s.at = stage::connecting;
            set_interest(i, EPOLLOUT);
        } else {
            die("connect (slot %zu, after %u connections): %s", i, s.seq, std::strerror(errno));
        }
    }

    // The SSL call returned `ret` without finishing: wait for what it needs.
    void wait(std::size_t i, int ret, const char* what) {
        slot& s = slots_[i];
        switch (SSL_get_error(s.ssl, ret)) {
        case SSL_ERROR_WANT_READ:
            set_interest(i, EPOLLIN);
            break;
        case SSL_ERROR_WANT_WRITE:
            set_interest(i, EPOLLOUT);
            break;
        default:
            die("TLS %s (slot %zu, after %u connections): %s", what, i, s.seq, tls_failure(s.ssl, ret).c_str());
        }
    }

    void step(std::size_t i) {
        slot& s = slots_[i];
        if (s.at == stage::connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) die("connect (slot %zu, after %u connections): %s", i, s.seq, std::strerror(err));
            s.at = stage::handshaking;
        }
        if (s.at == stage::handshaking) {
            if (int r = SSL_do_handshake(s.ssl); r != 1) return wait(i, r, "handshake");
            s.at = stage::sending;
        }
        while (s.at == stage::sending) {
            int w = SSL_write(s.ssl, message(i) + s.sent, int(size_ - s.sent));
            if (w <= 0) return wait(i, w, "send");
            s.sent += std::size_t(w);
            if (s.sent == size_) s.at = stage::receiving;
        }
        for (;;) {
            int r = SSL_read(s.ssl, buf_.data(), int(size_ - s.received));
            if (r <= 0) return wait(i, r, "recv");
            if (std::memcmp(buf_.data(), message(i) + s.received, std::size_t(r)) != 0)
                die("slot %zu: wrong bytes in the echo (after %u connections)", i, s.seq);
            s.received += std::size_t(r);
            if (s.received == size_) break;
        }
        std::int64_t now = now_ns();
        if (record_) latencies_.push_back(now - s.started);
        ++s.seq;
        SSL_shutdown(s.ssl); // sends close_notify; the server's is not awaited
        SSL_free(s.ssl);
        ERR_clear_error();
        close(s.fd); // also leaves the epoll set
        start(i, now);
    }

    void turn(int timeout_ms) {
        epoll_event events[1024];
        int n = epoll_wait(ep_, events, 1024, timeout_ms);
        if (n < 0 && errno != EINTR) die("epoll_wait: %s", std::strerror(errno));
        for (int k = 0; k < n; ++k) step(events[k].data.u64);
    }

    std::size_t size_;
    SSL_CTX* ctx_;
    bool record_ = false;
    std::vector<char> pattern_;
    std::vector<slot> slots_;
    std::vector<char> buf_;
    std::vector<std::int64_t> latencies_;
    sockaddr_in addr_{};
    int ep_;
};
#endif

/// The JSON fields a TLS run adds (none for a plain one).
std::string tls_fields(bool tls, bool handshakes) {
    if (!tls) return "";
#ifdef BENCH_TLS
    std::size_t received = tickets;
#else
    std::size_t received = 0;
#endif
    return std::string(", \"tls\": true, \"handshakes\": ") + (handshakes ? "true" : "false") +
           ", \"tickets\": " + std::to_string(received);
}

double percentile_us(std::vector<std::int64_t>& v, double p) {
    if (v.empty()) return 0;
    auto at = v.begin() + std::ptrdiff_t(double(v.size() - 1) * p);
    std::nth_element(v.begin(), at, v.end());
    return double(*at) / 1e3;
}

} // namespace

int main(int argc, char** argv) {
    bench::options opt(argc, argv,
                       {"port", "connections", "size", "warmup", "seconds", "server-pid", "idle-seconds", "cafile"},
                       "--port P [--connections N] [--size BYTES] [--warmup S] [--seconds S] "
                       "[--server-pid PID] [--idle-seconds S] [--tls [--cafile FILE]] [--handshakes]",
                       {"tls", "handshakes"});
    int port = int(opt.number("port", 0));
    auto n = std::size_t(opt.number("connections", 1));
    auto size = std::size_t(opt.number("size", 64));
    double warmup = opt.number("warmup", 1), seconds = opt.number("seconds", 5);
    long pid = long(opt.number("server-pid", 0));
    bool idle = opt.has("idle-seconds");
    if (port <= 0 || n == 0 || size == 0) die("--port, --connections and --size must be positive");
    if (idle && pid <= 0) die("--idle-seconds measures the server's memory: it needs --server-pid");
    bool handshakes = opt.has("handshakes"), tls = handshakes || opt.has("tls");
    if (handshakes && idle) die("--handshakes and --idle-seconds do not go together");
    if (!tls && opt.has("cafile")) die("--cafile goes with --tls");
#ifdef BENCH_TLS
    SSL_CTX* tls_ctx = tls ? client_context(opt.text("cafile", "")) : nullptr;
#else
    if (tls) die("--tls and --handshakes need a loadgen built with OpenSSL 3");
#endif
    alarm(unsigned(warmup + seconds + opt.number("idle-seconds", 0) + 120)); // never outlive a stuck run

    long own_limit = bench::raise_fd_limit();
    if (long(n) + 16 > own_limit)
        cannot_run("%zu connections need %zu descriptors; the hard limit (ulimit -Hn) is %ld", n, n + 16, own_limit);
    if (pid > 0) {
        long server_limit = proc_number(pid, "limits", "Max open files");
        if (long(n) + 16 > server_limit)
            cannot_run("%zu connections need %zu descriptors in the server; its limit is %ld", n, n + 16, server_limit);
    }

    long rss_before = idle ? proc_number(pid, "status", "VmRSS:") : 0;
    // The rest, on a load<false>, a load<true> or a handshake_load.
    auto measure = [&](auto& l) {
        l.start(n);
        if (idle) {
            usleep(useconds_t(opt.number("idle-seconds", 0) * 1e6));
            long rss_after = proc_number(pid, "status", "VmRSS:");
            std::printf("{\"connections\": %zu, \"size\": %zu, \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
                        "\"rss_bytes_per_conn\": %.0f}\n",
                        n, size, rss_before, rss_after, double(rss_after - rss_before) * 1024 / double(n));
            return 0;
        }

        l.run_for(warmup, false);
        cpu_time server0 = pid > 0 ? process_cpu(pid) : cpu_time{}, own0 = own_cpu();
        std::map<long, double> threads0 = pid > 0 ? thread_cpu(pid) : std::map<long, double>{};
        double machine0 = machine_user_seconds();
        std::int64_t t0 = now_ns();
        l.run_for(seconds, true);
        double elapsed = double(now_ns() - t0) / 1e9;
        cpu_time server = pid > 0 ? process_cpu(pid) - server0 : cpu_time{}, own = own_cpu() - own0;
        std::string threads = pid > 0 ? thread_cpu_json(threads0, thread_cpu(pid)) : std::string("null");
        double other_user = machine_user_seconds() - machine0 - server.user - own.user;

        auto& lat = l.latencies();
        double count = double(lat.size());
        // Without --server-pid the server's figures are unknown: JSON null.
        auto server_figure = [&](double v) { return pid > 0 && count > 0 ? std::to_string(v) : std::string("null"); };
        std::printf(
            "{\"connections\": %zu, \"size\": %zu, \"seconds\": %.3f, \"round_trips\": %.0f, "
            "\"rt_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"server_cpu_pct\": %s, "
            "\"server_cpu_us_per_rt\": %s, \"server_user_us_per_rt\": %s, \"client_cpu_pct\": %.1f, "
            "\"other_user_cpu_pct\": %s, \"server_thread_cpu_s\": %s%s}\n",
            n, size, elapsed, count, count / elapsed, percentile_us(lat, 0.50), percentile_us(lat, 0.99),
            server_figure(100 * server.total() / elapsed).c_str(), server_figure(server.total() * 1e6 / count).c_str(),
            server_figure(server.user * 1e6 / count).c_str(), 100 * own.total() / elapsed,
            server_figure(100 * other_user / elapsed).c_str(), threads.c_str(), tls_fields(tls, handshakes).c_str());
        return 0;
    };
#ifdef BENCH_TLS
    if (handshakes) {
        handshake_load l(port, size, n, tls_ctx);
        return measure(l);
    }
    if (tls) {
        load<true> l(port, size, !idle, tls_ctx);
        return measure(l);
    }
#endif
    load<false> l(port, size, !idle);
    return measure(l);
}
