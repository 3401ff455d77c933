// The certificates of the TLS tests, made once per run by the openssl command
// in a temporary directory that is removed at exit: no private key is
// committed. certs().at("server.pem") etc.: a CA (ca.pem), a server
// certificate for localhost and 127.0.0.1 signed by it (server.pem/.key, the
// key also encrypted with "secret" as server_enc.key), an expired one
// (expired), one from another CA (other, other_ca), a client certificate
// (client).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unistd.h>

struct test_certs {
    std::string dir;
    std::string at(const char* name) const { return dir + "/" + name; }
};

inline std::string& certs_dir_to_remove() {
    static std::string d;
    return d;
}

inline const test_certs& certs() {
    static const test_certs c = [] {
        std::string tmpl = (std::filesystem::temp_directory_path() / "cosock-tls-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        certs_dir_to_remove() = tmpl;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(certs_dir_to_remove(), ec);
        });
        std::string script = "set -e; cd '" + tmpl + R"(';
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
key ca.key; openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj "/CN=cosock test CA"
key other_ca.key; openssl req -x509 -new -key other_ca.key -out other_ca.pem -days 30 -subj "/CN=another CA"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
printf 'extendedKeyUsage=clientAuth\n' > client.ext
leaf() { key "$1.key"; openssl req -new -key "$1.key" -out "$1.csr" -subj "$4";
         openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days "$3" -extfile "$5" -out "$1.pem"; }
leaf server ca 30 "/CN=localhost/O=cosock" san.ext
leaf expired ca -1 "/CN=localhost" san.ext
leaf other other_ca 30 "/CN=localhost" san.ext
leaf client ca 30 "/CN=cosock test client" client.ext
openssl pkey -in server.key -aes256 -passout pass:secret -out server_enc.key
)";
        std::string cmd = "{ " + script + "\n} >'" + tmpl + "/openssl.log' 2>&1";
        if (std::system(cmd.c_str()) != 0) {
            std::ifstream log(tmpl + "/openssl.log");
            std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
            throw std::runtime_error("making the test certificates with openssl failed: " + text);
        }
        return test_certs{tmpl};
    }();
    return c;
}

