// The control: the same calls, awaited, compile without a warning.
#include <chrono>
#include <cosock/cosock.hpp>
#include <csignal>
#include <string_view>

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
int main() {}
