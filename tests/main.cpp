// The test runner: doctest's main, after saying which backends run here. A
// backend this machine refuses (e.g. io_uring blocked by the kernel, or
// cosock built without liburing) is reported with the reason, and its test
// cases are skipped, never counted as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cosock/cosock.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    doctest::Context ctx;
    std::string excluded;
    for (auto b : {cosock::backend::select, cosock::backend::poll, cosock::backend::epoll, cosock::backend::io_uring}) {
        std::string name(cosock::to_string(b));
        std::string why = cosock::backend_unavailable(b);
        if (why.empty()) {
            std::printf("backend %-8s: runs\n", name.c_str());
        } else {
            std::printf("backend %-8s: SKIPPED: %s\n", name.c_str(), why.c_str());
            excluded += (excluded.empty() ? "*<" : ",*<") + name + ">";
        }
    }
    if (!excluded.empty()) ctx.addFilter("test-case-exclude", excluded.c_str());
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
