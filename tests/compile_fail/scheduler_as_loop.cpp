// A scheduler does not convert to its internal loop.
#include <cosock/cosock.hpp>

int main() {
    cosock::scheduler s;
    cosock::detail::loop& l = s; // expect: inaccessible
    (void)l;
}
