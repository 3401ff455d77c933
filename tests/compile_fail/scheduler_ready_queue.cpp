// Nor is its ready queue, or anything an awaiter uses to suspend a coroutine.
#include <cosock/cosock.hpp>

int main() {
    cosock::scheduler s;
    cosock::detail::ready_node n;
    s.schedule(n); // expect: inaccessible
}
