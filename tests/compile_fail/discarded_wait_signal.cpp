// wait_signal and signal_set::wait without co_await wait for nothing: the
// compiler says so.
#include <cosock/cosock.hpp>
#include <csignal>

cosock::task<> forgot(cosock::signal_set& set) {
    cosock::wait_signal({SIGTERM}); // expect: nodiscard
    set.wait();
    co_return;
}
int main() {}
