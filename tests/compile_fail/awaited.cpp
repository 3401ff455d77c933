// The control: the same calls, awaited, compile without a warning.
#include <chrono>
#include <cosock/cosock.hpp>
#include <csignal>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

cosock::task<> fine(cosock::socket& s, cosock::signal_set& set) {
    co_await s.sendall(std::string_view("kept"));
    char buf[4];
    auto op = cosock::with_timeout(s.recv(buf), std::chrono::seconds(1));
    co_await std::move(op);
    co_await cosock::sleep_for(std::chrono::milliseconds(1));
    int sig = co_await cosock::wait_signal({SIGINT, SIGTERM});
    sig = co_await set.wait();
    (void)sig;
}
// A range of views made while iterated is a range of buffers: the bytes are the vector's.
cosock::task<> views(cosock::socket& s, std::vector<std::string>& names) {
    auto as_views = names | std::views::transform([](const std::string& n) { return std::string_view(n); });
    co_await s.sendmsg(as_views);
}
int main() {}
