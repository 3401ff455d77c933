// sleep_for without co_await sleeps for no time at all: the compiler says so.
#include <chrono>
#include <cosock/cosock.hpp>

cosock::task<> forgot() {
    cosock::sleep_for(std::chrono::seconds(1)); // expect: nodiscard
    co_return;
}
int main() {}
