#include <cosock/cosock.hpp>
#ifdef COSOCK_TEST_TLS
#include <cosock/tls.hpp> // not in cosock.hpp: it needs OpenSSL
#endif
#include <doctest/doctest.h>

std::string odr_a_backend_name();

TEST_CASE("the whole library links from two translation units") {
    cosock::scheduler s{cosock::backend::select};
    CHECK(odr_a_backend_name() == "poll");
    CHECK(s.backend_name() == "select");
}
