// A range that makes its buffers as it is iterated (here a transform to
// std::string) would give sendmsg bytes freed before the call: refused.
#include <cosock/cosock.hpp>
#include <ranges>
#include <string>
#include <vector>

cosock::task<> lines(cosock::socket& s, std::vector<std::string>& names) {
    auto with_newline = names | std::views::transform([](const std::string& n) { return n + "\n"; });
    co_await s.sendmsg(with_newline); // expect: sendmsg
}
int main() {}
