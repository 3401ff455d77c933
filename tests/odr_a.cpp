// Two translation units include everything: an inline slip fails the link.
#include <cosock/cosock.hpp>
#ifdef COSOCK_TEST_TLS
#include <cosock/tls.hpp> // not in cosock.hpp: it needs OpenSSL
#endif

std::string odr_a_backend_name() {
    cosock::scheduler s{cosock::backend::poll};
    return std::string(s.backend_name());
}
