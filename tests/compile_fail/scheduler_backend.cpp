// The scheduler's backend is not API.
#include <cosock/cosock.hpp>

int main() {
    cosock::scheduler s;
    s.io(); // expect: inaccessible
}
