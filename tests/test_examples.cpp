// Smoke tests of the example programs: each server is started as its own
// process on a loopback port the kernel picks, driven by a real client (the
// example clients, or curl), then stopped. Every one runs on every backend.
#include "backends.hpp"
#include "child_process.hpp"

#include <string>

namespace {

std::string backend_name(cosock::backend b) { return std::string(cosock::to_string(b)); }

/// The example's path; the test is skipped loudly when the examples were not built.
std::string need_example(const char* name) {
    std::string p = example_path(name);
    if (p.empty()) MESSAGE("SKIPPED: example '" << name << "' not built (meson -Dexamples=false)");
    return p;
}

} // namespace

BACKEND_TEST("examples: echo runs its clients and serves") {
    std::string echo = need_example("echo");
    if (echo.empty()) return;
    child_process demo({echo, "--backend", backend_name(B::value), "--clients", "5"});
    std::string out = demo.read_all();
    CHECK(demo.wait() == 0);
    CHECK(out.find("5 of 5 clients got their message back") != std::string::npos);

    child_process bad({echo, "--clients", "many"}, true);
    std::string complaint = bad.read_all();
    CHECK(bad.wait() == 2);
    CHECK(complaint.find("'many'") != std::string::npos);
}
