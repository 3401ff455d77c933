// A socket operation that is not awaited does nothing: the compiler says so.
#include <cosock/cosock.hpp>
#include <string_view>

cosock::task<> forgot(cosock::socket& s) {
    s.sendall(std::string_view("lost")); // expect: nodiscard
    co_return;
}
int main() {}
