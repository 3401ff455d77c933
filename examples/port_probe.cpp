// Which TCP ports answer? Connects to many host:port targets at once, a
// bounded number at a time, and prints one line per target, in the order given:
//
//   HOST:PORT open | closed | timeout | error: <why>
//
//   port_probe [--backend NAME] [--timeout SECONDS] [--concurrency N] TARGET...
//
// A target is HOST:PORT, HOST:FIRST-LAST for a range of ports, or [IPv6]:PORT
// ("[::1]:80", "[::1]:8000-8010"); HOST may be a name. "closed" means the host
// refused (nothing listens there); "timeout" means no answer within --timeout
// (default 2 s), as a firewall that drops packets gives. --concurrency
// (default 100) bounds the connections open at once. The exit status is 0
// when every target is open, 1 otherwise.
#include <cosock/cosock.hpp>

#include "options.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using cosock::task;

struct target {
    std::string host; // as given, without brackets
    int port;
    std::string name() const {
        return (host.find(':') == std::string::npos ? host : "[" + host + "]") + ":" + std::to_string(port);
    }
};

// The ports of "80" or "8000-8010"; nullopt for anything else.
std::optional<std::pair<int, int>> port_range(std::string_view text) {
    auto number = [](std::string_view t) -> std::optional<int> {
        int v = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < 1 || v > 65535) return std::nullopt;
        return v;
    };
    auto dash = text.find('-');
    auto first = number(text.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : number(text.substr(dash + 1));
    if (!first || !last || *last < *first) return std::nullopt;
    return std::pair{*first, *last};
}

// Expands one TARGET argument, or explains what is wrong with it.
std::vector<target> parse_target(const std::string& text, const example::options& opt) {
    std::string_view host = text, ports;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == std::string::npos) opt.fail("bad target '" + text + "': expected [IPv6]:PORT");
        host = std::string_view(text).substr(1, close - 1);
        ports = std::string_view(text).substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos) opt.fail("bad target '" + text + "': expected HOST:PORT");
        host = std::string_view(text).substr(0, colon);
        ports = std::string_view(text).substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            opt.fail("bad target '" + text + "': an IPv6 address needs brackets, as in [::1]:80");
    }
    if (host.empty()) opt.fail("bad target '" + text + "': no host");
    auto range = port_range(ports);
    if (!range)
        opt.fail("bad target '" + text + "': the port must be 1-65535, or a range FIRST-LAST with FIRST <= LAST");
    std::vector<target> out;
    for (int p = range->first; p <= range->second; ++p) out.push_back({std::string(host), p});
    return out;
}

// What happened: the errno tells a refusal from an unreachable network.
task<std::string> probe(const target& t, std::chrono::nanoseconds timeout) {
    try {
        // The timeout bounds each connection attempt (a name may have several addresses).
        co_await cosock::create_connection({t.host, t.port}, timeout);
        co_return "open";
    } catch (const cosock::timeout_error&) {
        co_return "timeout";
    } catch (const std::system_error& e) {
        if (e.code() == std::errc::connection_refused) co_return "closed";
        co_return "error: " + e.code().message();
    }
}

// Each worker takes the next target until none is left, so at most
// `workers` connections are open at once however many targets there are.
// Results are printed in the order given, as soon as all before them are known.
struct scan {
    std::vector<target> targets;
    std::vector<std::optional<std::string>> results;
    std::size_t next = 0, printed = 0;
    bool all_open = true;

    task<> worker(std::chrono::nanoseconds timeout) {
        while (next < targets.size()) {
            std::size_t i = next++;
            results[i] = co_await probe(targets[i], timeout);
            all_open = all_open && *results[i] == "open";
            for (; printed < results.size() && results[printed]; ++printed)
                std::printf("%s %s\n", targets[printed].name().c_str(), results[printed]->c_str());
            std::fflush(stdout);
        }
    }
};

task<bool> run_scan(scan& sc, std::size_t concurrency, std::chrono::nanoseconds timeout) {
    std::vector<task<>> workers;
    for (std::size_t i = 0; i < std::min(concurrency, sc.targets.size()); ++i) workers.push_back(sc.worker(timeout));
    co_await cosock::when_all(std::move(workers));
    co_return sc.all_open;
}

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--timeout SECONDS] [--concurrency N] HOST:PORT[-LAST]...",
                         {"--timeout", "--concurrency"});
    auto timeout = opt.duration("--timeout", 2.0);
    // At most 1000 keeps the descriptors below the select backend's limit of 1024.
    auto concurrency = static_cast<std::size_t>(opt.number("--concurrency", 100, 1, 1000));
    if (opt.positional().empty()) opt.fail("no targets");
    scan sc;
    for (const std::string& text : opt.positional())
        for (target& t : parse_target(text, opt)) sc.targets.push_back(std::move(t));
    sc.results.resize(sc.targets.size());
    try {
        cosock::scheduler s{opt.backend()};
        return s.run(run_scan(sc, concurrency, timeout)) ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "port_probe: %s\n", e.what());
        return 1;
    }
}
