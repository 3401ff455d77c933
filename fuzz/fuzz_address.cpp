// Fuzz target: cosock::address parsing. Any text either parses or throws
// std::invalid_argument quoting it; what parses prints back to text that
// parses to an equal address (the promise to_string() makes).
#include <cosock/address.hpp>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        cosock::address a = cosock::address::parse(text);
        if (!(cosock::address::parse(a.to_string()) == a)) std::abort();
    } catch (const std::invalid_argument& e) {
        if (std::string_view(e.what()).find("cosock::address::parse(") == std::string_view::npos) std::abort();
    }
    // The (host, port) constructor with the same bytes as host and a port
    // taken from the length, so that out-of-range ports are tried too.
    int port = static_cast<int>(size * 977) - 1000;
    try {
        cosock::address b(text, port);
        if (!(cosock::address::parse(b.to_string()) == b)) std::abort();
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
