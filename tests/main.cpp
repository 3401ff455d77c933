// The test runner: doctest's main, after saying which backends are under test.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cosock/cosock.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    std::printf("cosock backends under test:");
    for (auto b : {cosock::backend::select, cosock::backend::poll}) {
        cosock::scheduler s{b};
        std::printf(" %s", std::string(s.backend_name()).c_str());
    }
    std::printf("\n");
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
