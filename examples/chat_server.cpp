// A chat room: each line a client sends goes to all the others, prefixed with
// its address. Written as select.select() servers are in Python: one loop over
// select() on the listening socket and every client, no task per client; all
// sockets have a zero timeout, so only select() waits. Lines are framed per
// client, and a slow reader blocks no one: what its kernel buffer refuses waits
// in its own buffer, sent when select() says writable, up to --max-backlog.
// On the select backend a client whose descriptor is 1024 or more (FD_SETSIZE,
// all select() can wait on) is told there is no room and closed; the others
// go on.
//
//   chat_server [--backend NAME] [--host ADDR] [--port N] [--max-line BYTES] [--max-backlog BYTES]
//   try: nc 127.0.0.1 7070, in two terminals or more
#include <cosock/cosock.hpp>

#include "options.hpp"

#include <array>
#include <chrono>
#include <climits>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/select.h>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

struct client {
    cosock::socket sock;
    std::string name;  // "host:port", the prefix of its lines
    std::string in{};  // the beginning of a line not yet ended
    std::string out{}; // what its kernel buffer has not taken yet
    enum { active, leaving, gone } state = active;
    steady::time_point deadline{}; // leaving: told why, we wait this long for its FIN
};

bool would_block(const std::system_error& e) { return e.code() == std::errc::resource_unavailable_try_again; }

class room {
  public:
    /// `fd_limit`: descriptors from there up cannot be waited on (FD_SETSIZE on select).
    room(cosock::socket srv, std::size_t max_line, std::size_t max_backlog, int fd_limit)
        : srv_(std::move(srv)), max_line_(max_line), max_backlog_(max_backlog), fd_limit_(fd_limit) {
        srv_.settimeout(0s); // a client may vanish between select() and accept()
    }

    cosock::task<> run() {
        const std::vector<int> none;
        for (;;) {
            std::vector<int> readers, writers;
            std::optional<std::chrono::nanoseconds> timeout; // until the next deadline, if any
            auto wake_at = [&](steady::time_point t) {
                auto left = std::max<std::chrono::nanoseconds>(t - steady::now(), 0ns);
                if (!timeout || left < *timeout) timeout = left;
            };
            if (steady::now() >= accept_after_)
                readers.push_back(srv_.fileno());
            else
                wake_at(accept_after_);
            for (auto& [fd, c] : clients_) {
                readers.push_back(fd);
                if (!c.out.empty()) writers.push_back(fd);
                if (c.state == client::leaving) wake_at(c.deadline);
            }
            auto ready = co_await cosock::select(readers, writers, none, timeout);
            for (int fd : ready.readable) {
                if (fd == srv_.fileno())
                    co_await admit();
                else if (auto it = clients_.find(fd); it != clients_.end())
                    co_await receive(it->second);
            }
            // Everyone's new lines are queued: send what each kernel buffer takes now.
            for (auto& [fd, c] : clients_)
                if (!c.out.empty() && c.state != client::gone) co_await flush(c);
            std::erase_if(clients_, [now = steady::now()](const auto& entry) {
                const client& c = entry.second;
                return c.state == client::gone || (c.state == client::leaving && now >= c.deadline);
            });
        }
    }

  private:
    cosock::task<> admit() {
        cosock::accept_result r;
        try {
            r = co_await srv_.accept();
        } catch (const std::system_error& e) {
            if (!would_block(e)) { // e.g. out of descriptors: pause rather than spin
                std::fprintf(stderr, "chat_server: %s\n", e.what());
                accept_after_ = steady::now() + 100ms;
            }
            co_return;
        }
        r.conn.settimeout(0s);
        std::string name = r.address.to_string();
        if (r.conn.fileno() >= fd_limit_) { // one such descriptor in a select() would end the room
            std::fprintf(stderr, "chat_server: refusing %s: descriptor %d is beyond what select() takes\n",
                         name.c_str(), r.conn.fileno());
            try { // a fresh socket's buffer is empty: this goes at once, or not at all
                co_await r.conn.send(std::string_view("* sorry, no room for another client\n"));
            } catch (const std::system_error&) {
            }
            co_return;
        }
        int others = broadcast("* " + name + " joined\n");
        int fd = r.conn.fileno(); // read before the move below
        client& c = clients_.emplace(fd, client{.sock = std::move(r.conn), .name = name}).first->second;
        c.out = "* welcome " + name + ", " + std::to_string(others) + " others here\n";
    }

    cosock::task<> receive(client& c) {
        if (c.state == client::gone) co_return;
        std::size_t n = 0;
        try {
            n = co_await c.sock.recv(buf_);
        } catch (const std::system_error& e) {
            if (!would_block(e)) drop(c, e.code().message());
            co_return;
        }
        if (n == 0) drop(c, "");
        if (n == 0 || c.state == client::leaving) co_return; // after a farewell, input is ignored until FIN
        c.in.append(buf_.data(), n);
        std::size_t start = 0;
        for (std::size_t nl; (nl = c.in.find('\n', start)) != std::string::npos && nl - start <= max_line_;
             start = nl + 1) {
            std::string_view line(c.in.data() + start, nl - start);
            if (line.ends_with('\r')) line.remove_suffix(1);
            broadcast(c.name + ": " + std::string(line) + "\n", &c);
        }
        c.in.erase(0, start);
        if (c.in.size() > max_line_) { // unfinished, or the line that stopped the loop
            // Say why, then wait a while for its FIN: closing with its input
            // unread would reset the connection and lose the message.
            drop(c, "line too long");
            c.state = client::leaving;
            c.out = "* line too long (at most " + std::to_string(max_line_) + " bytes); goodbye\n";
            c.deadline = steady::now() + 5s;
        }
    }

    cosock::task<> flush(client& c) {
        try {
            while (!c.out.empty()) c.out.erase(0, co_await c.sock.send(c.out));
            if (c.state == client::leaving) c.sock.shutdown(cosock::shut_wr); // the farewell is out: FIN
        } catch (const std::system_error& e) {
            if (!would_block(e)) drop(c, e.code().message());
        }
    }

    // Queues `text` for every active client but `from`; → how many took it.
    int broadcast(const std::string& text, const client* from = nullptr) {
        int sent = 0;
        for (auto& [fd, c] : clients_) {
            if (&c == from || c.state != client::active) continue;
            if (c.out.size() + text.size() > max_backlog_) {
                drop(c, "too slow");
            } else {
                c.out += text;
                ++sent;
            }
        }
        return sent;
    }

    // Gone at once: its socket closes at the end of this round.
    void drop(client& c, const std::string& why) {
        bool was_active = c.state == client::active;
        c.state = client::gone;
        c.out.clear();
        if (was_active) broadcast("* " + c.name + " left" + (why.empty() ? "" : " (" + why + ")") + "\n");
    }

    cosock::socket srv_;
    std::map<int, client> clients_; // by descriptor, as select() gives them back
    std::size_t max_line_, max_backlog_;
    int fd_limit_;
    steady::time_point accept_after_;
    std::array<char, 4096> buf_;
};

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--host ADDR] [--port N] [--max-line BYTES] [--max-backlog BYTES]",
                         {"--host", "--port", "--max-line", "--max-backlog"});
    auto max_line = static_cast<std::size_t>(opt.number("--max-line", 4096, 16, 1 << 20));
    auto max_backlog = static_cast<std::size_t>(opt.number("--max-backlog", 256 * 1024, 1024, 1LL << 32));
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const cosock::address where = opt.server_address(7070);
    try {
        cosock::scheduler s{opt.backend()};
        cosock::socket srv = cosock::create_server(s, where);
        example::announce(srv, s);
        s.spawn(example::report_stats_on_sigusr1(s)); // kill -USR1 prints the loop's counters
        room chat(std::move(srv), max_line, max_backlog,
                  s.backend_kind() == cosock::backend::select ? FD_SETSIZE : INT_MAX);
        s.run(chat.run());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "chat_server: %s\n", e.what());
        return 1;
    }
}
