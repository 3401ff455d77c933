// cosock TLS: Python's ssl module over OpenSSL 3 — ssl_context, wrap_socket,
// ssl_socket with awaitable recv/send/sendall/makefile.
//
// Optional: cosock.hpp does not include this header; a program that does links
// OpenSSL (-lssl -lcrypto; Meson: dependency('cosock-tls'); pkg-config:
// cosock-tls).
//
// How it runs: OpenSSL reads the socket's non-blocking descriptor through a
// small BIO, and writes into a buffer of the connection's that cosock sends
// (with MSG_NOSIGNAL, so no SIGPIPE). Every SSL_read, SSL_write,
// SSL_do_handshake and SSL_shutdown is one synchronous non-blocking step;
// what it wrote is sent before the operation waits or ends, and when OpenSSL
// wants more to read, or the socket takes no more, the operation waits for
// that through the scheduler, which every backend supports (io_uring runs it
// as a poll). OpenSSL's writes never fail for want of room, so OpenSSL never
// holds half a record: a write it answers from inside a read (a TLS 1.3 key
// update) never collides with a record the writer started, and no write has
// to be repeated with the same bytes. (TLS 1.2 renegotiation is refused.) The
// SSL object and the bytes not yet sent live in the ssl_socket's heap state,
// never in a coroutine frame, so an operation abandoned part-way (its task destroyed, a
// stop request, with_timeout, the socket's timeout) loses nothing:
//   - recv: bytes OpenSSL decrypted but did not hand out stay in it for the
//     next recv (a recv hands out nothing unless it returns).
//   - send/sendall: bytes OpenSSL took are encrypted into the connection's
//     buffer (at most one record, 16 KiB, beyond what the socket took), which
//     the next send, sendall, shutdown, unwrap or file object flush sends
//     first.
//     last_send_progress() says how much of the abandoned buffer was taken:
//     continue from there and every byte arrives once, in order.
//
// Errors: ssl_error (a std::system_error with OpenSSL's error text),
// ssl_certificate_error (verification failed: its reason), ssl_eof_error (the
// peer closed the TCP stream without close_notify); std::system_error for a
// failed system call (ECONNRESET, EBADF when closed under a waiting
// operation), timeout_error, cancelled_error for a stop request. Every
// message names the operation. An ssl_socket is used from the thread of its
// scheduler only, by one reading and one writing coroutine at a time.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cosock/buffer.hpp>
#include <cosock/detail/io_awaiter.hpp>
#include <cosock/detail/ops/wait.hpp>
#include <cosock/detail/retry_awaiter.hpp>
#include <cosock/detail/stream_transport.hpp>
#include <cosock/detail/sys.hpp>
#include <cosock/detail/timer_heap.hpp>
#include <cosock/error.hpp>
#include <cosock/file_object.hpp>
#include <cosock/socket.hpp>
#include <cosock/task.hpp>

#if OPENSSL_VERSION_MAJOR < 3
#error "cosock/tls.hpp needs OpenSSL 3"
#endif

namespace cosock {

// ---------------------------------------------------------------- errors

/// The category of ssl_error codes: the SSL_ERROR_* value (SSL_ERROR_SSL,
/// SSL_ERROR_SYSCALL, …; 8 is Python's SSL_ERROR_EOF).
inline const std::error_category& ssl_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "ssl"; }
        std::string message(int v) const override {
            switch (v) {
            case SSL_ERROR_SSL:
                return "SSL_ERROR_SSL";
            case SSL_ERROR_SYSCALL:
                return "SSL_ERROR_SYSCALL";
            case SSL_ERROR_ZERO_RETURN:
                return "SSL_ERROR_ZERO_RETURN";
            case 8:
                return "SSL_ERROR_EOF";
            default:
                return "SSL error " + std::to_string(v);
            }
        }
    };
    static const category c;
    return c;
}

/// Python's ssl.SSLError: a TLS failure. what() names the operation and holds
/// OpenSSL's error queue as text; library() and reason() are those of its
/// first error ("SSL routines", "wrong version number"), empty when none.
class ssl_error : public std::system_error {
  public:
    ssl_error(int code, const std::string& what, std::string library = {}, std::string reason = {})
        : std::system_error(code, ssl_category(), what), library_(std::move(library)), reason_(std::move(reason)) {}
    const std::string& library() const noexcept { return library_; }
    const std::string& reason() const noexcept { return reason_; }

  private:
    std::string library_, reason_;
};

/// Python's ssl.SSLCertVerificationError: the peer's certificate was refused.
/// verify_message() is X509_verify_cert_error_string's text ("certificate has
/// expired", "hostname mismatch", …), verify_code() the X509_V_ERR_* value.
class ssl_certificate_error : public ssl_error {
  public:
    ssl_certificate_error(const std::string& what, long verify_code, std::string verify_message)
        : ssl_error(SSL_ERROR_SSL, what, "SSL routines", "certificate verify failed"), code_(verify_code),
          message_(std::move(verify_message)) {}
    long verify_code() const noexcept { return code_; }
    const std::string& verify_message() const noexcept { return message_; }

  private:
    long code_;
    std::string message_;
};

/// Python's ssl.SSLEOFError: the peer closed the TCP stream without sending
/// close_notify (a possible truncation attack). recv() reports it only with
/// suppress_ragged_eofs = false; otherwise it returns 0 as for a clean close.
class ssl_eof_error : public ssl_error {
  public:
    explicit ssl_eof_error(const std::string& what)
        : ssl_error(8, what, "SSL routines", "unexpected eof while reading") {}
};

// ---------------------------------------------------------------- context

/// What a context is for, as Python's ssl.Purpose: server_auth makes a client
/// context (it authenticates servers), client_auth a server context.
enum class purpose { server_auth, client_auth };

/// Python's ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED.
enum cert_reqs { cert_none, cert_optional, cert_required };

/// Protocol versions for minimum_version / maximum_version.
enum class tls_version { tlsv1_2, tlsv1_3 };

/// wrap_socket's keyword arguments, as designated initializers.
struct wrap_options {
    bool server_side = false;
    /// The name checked against the server's certificate and sent as SNI (an
    /// IP address is checked, not sent). Empty: none (Python's None).
    std::string server_hostname = {};
    /// false: wrap_socket returns at once; co_await do_handshake() later.
    bool do_handshake_on_connect = true;
    /// true (Python's default): a peer closing without close_notify reads as
    /// end of stream (recv → 0); false: recv throws ssl_eof_error.
    bool suppress_ragged_eofs = true;
};

class ssl_socket;
class ssl_context;

namespace detail {
struct tls_context_state {
    SSL_CTX* ctx = nullptr;
    bool check_hostname = false;
    bool server = false;
    std::string alpn; // wire format: length-prefixed names
    ~tls_context_state() { SSL_CTX_free(ctx); }
};
// A class template, compiled only where a connection is made (see
// "Coroutines as templates" in task.hpp); tls_stream is the one there is.
template <int = 0>
class basic_tls_stream;
using tls_stream = basic_tls_stream<>;
[[noreturn]] inline void throw_ssl_queue(const std::string& what, int code = SSL_ERROR_SSL);
} // namespace detail

/// Python's ssl.SSLContext: certificates, verification and protocol settings
/// shared by the sockets it wraps. A copyable handle (like a shared_ptr) over
/// one SSL_CTX. Configure it first, then wrap sockets: once configured it may
/// be shared by schedulers on several threads (OpenSSL locks what the
/// connections share), but configuring it while another thread wraps or runs
/// connections with it is not safe. Methods throw ssl_error naming the call
/// and OpenSSL's reason, std::invalid_argument for a bad argument.
class ssl_context {
  public:
    /// A context for `p`: server_auth is Python's PROTOCOL_TLS_CLIENT (verify
    /// required, check_hostname on, no CA loaded yet); client_auth its
    /// PROTOCOL_TLS_SERVER (no client certificate asked). TLS 1.2 minimum.
    explicit ssl_context(purpose p) : st_(std::make_shared<detail::tls_context_state>()) {
        bool server = p == purpose::client_auth;
        st_->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
        if (!st_->ctx) detail::throw_ssl_queue("ssl_context: SSL_CTX_new");
        st_->server = server;
        SSL_CTX_set_min_proto_version(st_->ctx, TLS1_2_VERSION);
        // TLS 1.2 renegotiation is refused, either side asking (as Go and
        // BoringSSL do by default): OpenSSL cannot run one while a reader
        // and a writer share the connection.
        SSL_CTX_set_options(st_->ctx, SSL_OP_NO_RENEGOTIATION);
        static const unsigned char sid[] = "cosock";
        SSL_CTX_set_session_id_context(st_->ctx, sid, sizeof sid - 1);
        // A key file with a passphrase and no password given must fail, not prompt.
        SSL_CTX_set_default_passwd_cb(st_->ctx, [](char*, int, int, void*) { return 0; });
        if (!server) {
            st_->check_hostname = true;
            SSL_CTX_set_verify(st_->ctx, SSL_VERIFY_PEER, nullptr);
        }
    }
    /// A server context (Python's SSLContext(PROTOCOL_TLS_SERVER)).
    static ssl_context server() { return ssl_context(purpose::client_auth); }
    /// A client context (Python's SSLContext(PROTOCOL_TLS_CLIENT)).
    static ssl_context client() { return ssl_context(purpose::server_auth); }

    /// Loads a PEM certificate chain and its private key (`keyfile` empty: in
    /// `certfile`), decrypting the key with `password` if it has one. Throws
    /// ssl_error naming the file for a missing or unreadable file, a wrong
    /// password, or a key that does not match the certificate.
    void load_cert_chain(const std::string& certfile, const std::string& keyfile = {},
                         const std::string& password = {}) {
        const std::string& key = keyfile.empty() ? certfile : keyfile;
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(st_->ctx, certfile.c_str()) != 1)
            detail::throw_ssl_queue("load_cert_chain: certificate file " + detail::quoted(certfile));
        struct pw {
            const std::string* p;
        } arg{&password};
        SSL_CTX_set_default_passwd_cb_userdata(st_->ctx, &arg);
        SSL_CTX_set_default_passwd_cb(st_->ctx, [](char* buf, int size, int, void* u) {
            const std::string& p = *static_cast<pw*>(u)->p;
            if (p.empty() || p.size() > std::size_t(size)) return 0;
            std::copy(p.begin(), p.end(), buf);
            return int(p.size());
        });
        int ok = SSL_CTX_use_PrivateKey_file(st_->ctx, key.c_str(), SSL_FILETYPE_PEM);
        SSL_CTX_set_default_passwd_cb(st_->ctx, [](char*, int, int, void*) { return 0; });
        SSL_CTX_set_default_passwd_cb_userdata(st_->ctx, nullptr);
        if (ok != 1 && ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            detail::throw_ssl_queue("load_cert_chain: the key in " + detail::quoted(key) +
                                    " does not match the certificate in " + detail::quoted(certfile));
        if (ok != 1)
            detail::throw_ssl_queue("load_cert_chain: private key file " + detail::quoted(key) +
                                    (password.empty() ? "" : " (with the password given)"));
        if (SSL_CTX_check_private_key(st_->ctx) != 1)
            detail::throw_ssl_queue("load_cert_chain: the key in " + detail::quoted(key) +
                                    " does not match the certificate in " + detail::quoted(certfile));
    }

    /// Trusts the CA certificates in `cafile` (PEM), in the hashed directory
    /// `capath`, and/or in `cadata` (PEM text). Throws std::invalid_argument
    /// when all are empty, ssl_error naming what failed to load.
    void load_verify_locations(const std::string& cafile, const std::string& capath = {},
                               std::string_view cadata = {}) {
        if (cafile.empty() && capath.empty() && cadata.empty())
            throw std::invalid_argument("load_verify_locations: cafile, capath and cadata are all empty");
        ERR_clear_error();
        if ((!cafile.empty() || !capath.empty()) &&
            SSL_CTX_load_verify_locations(st_->ctx, cafile.empty() ? nullptr : cafile.c_str(),
                                          capath.empty() ? nullptr : capath.c_str()) != 1)
            detail::throw_ssl_queue("load_verify_locations: cafile " + detail::quoted(cafile) + ", capath " +
                                    detail::quoted(capath));
        if (!cadata.empty()) load_cadata(cadata);
    }

    /// Trusts the system's CA certificates (OpenSSL's default paths).
    void set_default_verify_paths() {
        ERR_clear_error();
        if (SSL_CTX_set_default_verify_paths(st_->ctx) != 1) detail::throw_ssl_queue("set_default_verify_paths");
    }

    /// Whether a client checks the server's certificate against
    /// server_hostname (a property, as getter and setter). Turning it on with
    /// verify_mode cert_none sets cert_required, as Python does.
    bool check_hostname() const noexcept { return st_->check_hostname; }
    void set_check_hostname(bool on) {
        if (on && verify_mode() == cert_none) set_verify_mode(cert_required);
        st_->check_hostname = on;
    }

    /// Python's verify_mode. cert_required on a server asks for and requires a
    /// client certificate; cert_optional asks for one. Setting cert_none
    /// while check_hostname is on throws std::invalid_argument (as Python).
    cert_reqs verify_mode() const noexcept {
        int m = SSL_CTX_get_verify_mode(st_->ctx);
        if (!(m & SSL_VERIFY_PEER)) return cert_none;
        if (!st_->server || (m & SSL_VERIFY_FAIL_IF_NO_PEER_CERT)) return cert_required;
        return cert_optional;
    }
    void set_verify_mode(cert_reqs m) {
        if (m == cert_none && st_->check_hostname)
            throw std::invalid_argument("set_verify_mode: cannot set cert_none while check_hostname is on");
        int flags = m == cert_none ? SSL_VERIFY_NONE : SSL_VERIFY_PEER;
        if (m == cert_required && st_->server) flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(st_->ctx, flags, nullptr);
    }

    /// The protocols offered (client) or accepted in this order of preference
    /// (server) by ALPN, e.g. {"h2", "http/1.1"}. Throws std::invalid_argument
    /// for an empty name or one longer than 255 bytes, and for a list longer
    /// than 63,481 bytes on the wire (what fits beside the handshake's other
    /// extensions).
    void set_alpn_protocols(const std::vector<std::string>& protocols) {
        std::string wire;
        for (const std::string& p : protocols) {
            if (p.empty() || p.size() > 255)
                throw std::invalid_argument("set_alpn_protocols: protocol name " + detail::quoted(p.substr(0, 40)) +
                                            (p.empty() ? " is empty" : " is longer than 255 bytes"));
            wire += char(p.size());
            wire += p;
        }
        // The ClientHello's extensions share one block of at most 65535 bytes:
        // the list, its 6 bytes of framing, and 2 KiB kept for the others.
        constexpr std::size_t most = 65535 - 6 - 2048;
        if (wire.size() > most)
            throw std::invalid_argument("set_alpn_protocols: the list takes " + std::to_string(wire.size()) +
                                        " bytes on the wire; at most " + std::to_string(most) +
                                        " fit beside the other extensions of a handshake");
        st_->alpn = wire;
        if (st_->server) {
            SSL_CTX_set_alpn_select_cb(
                st_->ctx,
                [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                   void* arg) {
                    auto* st = static_cast<detail::tls_context_state*>(arg);
                    unsigned char* sel = nullptr;
                    if (st->alpn.empty() ||
                        SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(st->alpn.data()),
                                              unsigned(st->alpn.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED)
                        return SSL_TLSEXT_ERR_NOACK;
                    *out = sel;
                    return SSL_TLSEXT_ERR_OK;
                },
                st_.get());
        } else if (SSL_CTX_set_alpn_protos(st_->ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                           unsigned(wire.size())) != 0) {
            detail::throw_ssl_queue("set_alpn_protocols");
        }
    }

    /// The lowest and highest protocol versions allowed (TLS 1.2 and 1.3 by default).
    tls_version minimum_version() const noexcept {
        return SSL_CTX_get_min_proto_version(st_->ctx) == TLS1_3_VERSION ? tls_version::tlsv1_3 : tls_version::tlsv1_2;
    }
    void set_minimum_version(tls_version v) {
        if (SSL_CTX_set_min_proto_version(st_->ctx, openssl_version(v)) != 1)
            detail::throw_ssl_queue("set_minimum_version");
    }
    tls_version maximum_version() const noexcept {
        return SSL_CTX_get_max_proto_version(st_->ctx) == TLS1_2_VERSION ? tls_version::tlsv1_2 : tls_version::tlsv1_3;
    }
    void set_maximum_version(tls_version v) {
        if (SSL_CTX_set_max_proto_version(st_->ctx, openssl_version(v)) != 1)
            detail::throw_ssl_queue("set_maximum_version");
    }

    /// The TLS 1.2 cipher list in OpenSSL's syntax ("ECDHE+AESGCM"), as
    /// Python's set_ciphers; throws ssl_error when it selects none. TLS 1.3
    /// suites are set apart: set_ciphersuites.
    void set_ciphers(const std::string& ciphers) {
        ERR_clear_error();
        if (SSL_CTX_set_cipher_list(st_->ctx, ciphers.c_str()) != 1)
            detail::throw_ssl_queue("set_ciphers(" + detail::quoted(ciphers) + ")");
    }

    /// The TLS 1.3 cipher suites, in order of preference, separated by ':'
    /// ("TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"); throws
    /// std::invalid_argument naming an unknown name, or a list naming none.
    /// (Python has no such setter; OpenSSL's defaults stand until it is called.)
    void set_ciphersuites(const std::string& suites) {
        ERR_clear_error();
        std::string what = "set_ciphersuites(" + detail::quoted(suites) + ")";
        if (suites.find_first_not_of(':') == std::string::npos)
            throw std::invalid_argument(what + ": no cipher suite named");
        // OpenSSL skips unknown names when one is known: each is tried alone
        // first, on a scratch context, so the context is left as it was.
        std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> scratch(SSL_CTX_new(TLS_method()), SSL_CTX_free);
        if (!scratch) detail::throw_ssl_queue(what);
        for (std::size_t at = 0; at < suites.size();) {
            std::size_t end = std::min(suites.find(':', at), suites.size());
            std::string name = suites.substr(at, end - at);
            if (!name.empty() && SSL_CTX_set_ciphersuites(scratch.get(), name.c_str()) != 1) {
                ERR_clear_error();
                throw std::invalid_argument(what + ": unknown TLS 1.3 cipher suite " + detail::quoted(name));
            }
            at = end + 1;
        }
        if (SSL_CTX_set_ciphersuites(st_->ctx, suites.c_str()) != 1) detail::throw_ssl_queue(what);
    }

    /// `co_await ctx.wrap_socket(std::move(sock), {.server_hostname = "example.com"})`
    /// → an ssl_socket over the connected stream socket, its handshake done
    /// unless do_handshake_on_connect is false. Throws std::system_error(EBADF)
    /// for a closed socket, std::invalid_argument for a datagram socket or a
    /// client with check_hostname and no server_hostname, and what
    /// do_handshake() throws. The socket's timeout bounds the handshake.
    template <int = 0>
    task<ssl_socket> wrap_socket(cosock::socket sock, wrap_options options = {}) const;

    /// The SSL_CTX, for settings cosock does not wrap.
    SSL_CTX* native_handle() const noexcept { return st_->ctx; }

  private:
    static int openssl_version(tls_version v) noexcept {
        return v == tls_version::tlsv1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    }
    void load_cadata(std::string_view pem) {
        BIO* mem = BIO_new_mem_buf(pem.data(), int(pem.size()));
        if (!mem) detail::throw_ssl_queue("load_verify_locations: cadata");
        STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(mem, nullptr, nullptr, nullptr);
        BIO_free(mem);
        if (!infos) detail::throw_ssl_queue("load_verify_locations: cadata holds no PEM certificate");
        X509_STORE* store = SSL_CTX_get_cert_store(st_->ctx);
        int added = 0;
        for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
            X509_INFO* info = sk_X509_INFO_value(infos, i);
            if (info->x509 && X509_STORE_add_cert(store, info->x509) == 1) ++added;
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        if (added == 0) throw ssl_error(SSL_ERROR_SSL, "load_verify_locations: cadata holds no PEM certificate");
    }

    template <int = 0>
    static task<ssl_socket> wrap_task(std::shared_ptr<detail::tls_context_state> ctx, cosock::socket sock,
                                      wrap_options options);

    friend class ssl_socket;
    std::shared_ptr<detail::tls_context_state> st_;
};

/// Python's ssl.create_default_context(purpose): a client context
/// (server_auth) verifying the server against the system's CAs with
/// check_hostname, or a server context (client_auth) that trusts the system's
/// CAs for client certificates it may ask for. TLS 1.2 minimum. Throws
/// ssl_error if OpenSSL cannot make the context or load its default paths.
inline ssl_context create_default_context(purpose p = purpose::server_auth) {
    ssl_context c(p);
    c.set_default_verify_paths();
    return c;
}

// ---------------------------------------------------------------- results

/// What getpeercert() gives: the peer's certificate, decoded.
struct peer_certificate {
    std::string subject;                        ///< RFC 2253, e.g. "CN=localhost,O=cosock"
    std::string issuer;                         ///< the same for the issuer
    std::vector<std::string> subject_alt_names; ///< its DNS names
    std::string not_before, not_after;          ///< as Python prints them: "Dec  2 21:41:44 2026 GMT"
    std::string serial_number;                  ///< upper-case hex
};

/// What cipher() gives: Python's (name, protocol, secret bits).
struct cipher_info {
    std::string name;
    std::string protocol;
    int bits = 0;
};

namespace detail {

/// Drains OpenSSL's error queue into text (each entry's ERR_error_string_n),
/// keeping the first entry's library and reason.
struct ssl_queue_text {
    std::string text, library, reason;
    unsigned long first = 0;
};
inline ssl_queue_text drain_ssl_queue() {
    ssl_queue_text q;
    while (unsigned long e = ERR_get_error()) {
        if (!q.first) {
            q.first = e;
            if (const char* l = ERR_lib_error_string(e)) q.library = l;
            if (const char* r = ERR_reason_error_string(e)) q.reason = r;
        }
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!q.text.empty()) q.text += "; ";
        q.text += buf;
    }
    return q;
}

[[noreturn]] inline void throw_ssl_queue(const std::string& what, int code) {
    ssl_queue_text q = drain_ssl_queue();
    throw ssl_error(code, what + ": " + (q.text.empty() ? "unknown OpenSSL error" : q.text), q.library, q.reason);
}

// The BIO of a connection: reads are cosock's own recv on the descriptor
// (the errno of a failure is kept); writes go to `out`, which the connection
// sends itself, so OpenSSL's writes always succeed.
struct bio_target {
    int fd = -1;
    int last_errno = 0;    // of the last failed recv
    bool read_eof = false; // the last recv found the end of the stream
    std::string out;    // written by OpenSSL, not yet sent: [out_pos, size)
    std::size_t out_pos = 0;
};

inline BIO_METHOD* socket_bio_method() {
    static BIO_METHOD* m = [] {
        BIO_METHOD* b = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cosock socket");
        BIO_meth_set_write(b, [](BIO* bio, const char* data, int len) {
            BIO_clear_retry_flags(bio);
            static_cast<bio_target*>(BIO_get_data(bio))->out.append(data, std::size_t(len));
            return len;
        });
        BIO_meth_set_read(b, [](BIO* bio, char* data, int len) {
            BIO_clear_retry_flags(bio);
            auto* t = static_cast<bio_target*>(BIO_get_data(bio));
            int r = sys::recv(t->fd, data, std::size_t(len), 0);
            if (r == 0) t->read_eof = true;
            if (r >= 0) return r;
            if (r == -EAGAIN || r == -EWOULDBLOCK)
                BIO_set_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY);
            else
                t->last_errno = -r;
            return -1;
        });
        BIO_meth_set_ctrl(b, [](BIO*, int cmd, long, void*) -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; });
        BIO_meth_set_create(b, [](BIO* bio) {
            BIO_set_init(bio, 1);
            return 1;
        });
        return b;
    }();
    return m;
}

/// A step's outcome when it must wait: what OpenSSL wants of the descriptor.
enum class want { none, read, write };

/// One operation's deadline: the socket's timeout bounds the whole operation.
struct op_deadline {
    timeout_t timeout;
    clock::time_point at;
    explicit op_deadline(timeout_t t) : timeout(t), at(t > timeout_t::zero() ? after(t) : clock::time_point{}) {}
    // What the next wait may take: no_timeout, zero (never wait), or the rest.
    timeout_t left(const char* op) const {
        if (timeout <= timeout_t::zero()) return timeout;
        auto rest = at - clock::now();
        if (rest <= clock::duration::zero()) throw timeout_error(std::string(op) + ": timed out");
        return std::chrono::duration_cast<timeout_t>(rest) + timeout_t(1);
    }
};

// The state of one TLS connection, on the heap: the SSL object, the socket,
// what OpenSSL wrote that the socket has not taken yet. Shared by the ssl_socket and the
// file objects made from it; the last owner frees it.
template <int>
class basic_tls_stream final : public stream_transport {
  public:
    basic_tls_stream(cosock::socket sock, std::shared_ptr<tls_context_state> ctx, const wrap_options& o)
        : sock_(std::move(sock)), ctx_(std::move(ctx)), hostname_(o.server_hostname),
          suppress_ragged_eofs_(o.suppress_ragged_eofs), server_side_(o.server_side) {
        target_.fd = sock_.fileno();
        ERR_clear_error();
        ssl_ = SSL_new(ctx_->ctx);
        if (!ssl_) throw_ssl_queue("wrap_socket: SSL_new");
        BIO* bio = BIO_new(socket_bio_method());
        if (!bio) {
            SSL_free(ssl_);
            throw_ssl_queue("wrap_socket: BIO_new");
        }
        BIO_set_data(bio, &target_);
        SSL_set_bio(ssl_, bio, bio);
        if (server_side_) {
            SSL_set_accept_state(ssl_);
        } else {
            SSL_set_connect_state(ssl_);
            if (!hostname_.empty()) {
                bool is_ip = is_ip_address(hostname_);
                if (!is_ip) SSL_set_tlsext_host_name(ssl_, hostname_.c_str());
                if (ctx_->check_hostname) {
                    X509_VERIFY_PARAM* p = SSL_get0_param(ssl_);
                    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, hostname_.c_str())
                                   : X509_VERIFY_PARAM_set1_host(p, hostname_.c_str(), hostname_.size());
                    if (ok != 1) {
                        SSL_free(ssl_);
                        throw_ssl_queue("wrap_socket: server_hostname " + detail::quoted(hostname_));
                    }
                }
            }
        }
    }
    ~basic_tls_stream() {
        end_waits();
        SSL_free(ssl_);
    }
    basic_tls_stream(const basic_tls_stream&) = delete;
    basic_tls_stream& operator=(const basic_tls_stream&) = delete;

    SSL* ssl() const noexcept { return ssl_; }
    cosock::socket& sock() noexcept { return sock_; }
    const std::string& hostname() const noexcept { return hostname_; }
    bool server_side() const noexcept { return server_side_; }
    std::size_t last_send_progress = 0;
    io_awaiter* waiting[2] = {}; // the ssl_socket's read and write operations waiting now

    void end_waits() noexcept {
        for (io_awaiter* w : waiting)
            if (w) w->end(end_reason::closed);
    }

    // ---- the synchronous steps: each returns at once

    // SSL_read: → bytes (> 0), 0 at end of stream, or -1 with `w` set.
    int read_step(std::span<char> room, want& w, const char* op) {
        if (eof_) return 0;
        int n = int(std::min<std::size_t>(room.size(), INT_MAX));
        int r = call([&] { return SSL_read(ssl_, room.data(), n); });
        if (r > 0) return r;
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (wants(e, w)) return -1;
        if (is_eof(e) && suppress_ragged_eofs_) {
            ERR_clear_error();
            eof_ = true; // OpenSSL refuses further reads: the end of stream stays
            return 0;
        }
        fail(e, op);
    }

    // SSL_write of at most one record, into the outgoing buffer: → bytes
    // taken (> 0), or -1 with `w` set (OpenSSL must read first: a handshake
    // started through native_handle()).
    int write_step(const char* data, std::size_t len, want& w, const char* op) {
        int n = int(std::min<std::size_t>(len, 16384));
        int r = call([&] { return SSL_write(ssl_, data, n); });
        if (r > 0) return r;
        int e = SSL_get_error(ssl_, r);
        if (!wants(e, w)) fail(e, op);
        return -1;
    }

    // Sends what OpenSSL wrote: true when nothing is left, false with `w`
    // set when the socket takes no more now. A failed send throws its errno.
    bool flush_step(want& w, const char* op) {
        bio_target& t = target_;
        while (t.out_pos < t.out.size()) {
            int r = sys::send(t.fd, t.out.data() + t.out_pos, t.out.size() - t.out_pos, 0);
            if (r == -EAGAIN || r == -EWOULDBLOCK) {
                w = want::write;
                return false;
            }
            if (r < 0) throw_error(r, op);
            t.out_pos += std::size_t(r);
        }
        t.out.clear(); // keeps its capacity: no allocation per record
        t.out_pos = 0;
        return true;
    }
    bool write_pending() const noexcept { return target_.out_pos < target_.out.size(); }

    // What a read or a failure made OpenSSL write (a key update's answer, an
    // alert) goes out now if the socket takes it. Otherwise, or if sending
    // fails, the next write or read tries again (and reports the failure).
    void flush_quietly() noexcept {
        if (!write_pending()) return;
        try {
            want w = want::none;
            flush_step(w, "send");
        } catch (...) {
        }
    }

    // SSL_do_handshake: true when done.
    bool handshake_step(want& w, const char* op) {
        int r = call([&] { return SSL_do_handshake(ssl_); });
        if (r == 1) return true;
        int e = SSL_get_error(ssl_, r);
        if (!wants(e, w)) fail(e, op);
        return false;
    }

    // SSL_shutdown, writing our close_notify: true once it is written.
    bool shutdown_step(want& w, const char* op) {
        int r = call([&] { return SSL_shutdown(ssl_); });
        if (r >= 0) return notify_sent_ = true;
        int e = SSL_get_error(ssl_, r);
        if (!wants(e, w)) fail(e, op);
        return false;
    }

    // ---- waiting: one readiness wait through the scheduler, bounded by
    // what is left of the operation's deadline. `slot` holds the one
    // operation of its direction waiting now: a second one is misuse.
    auto wait(want w, const op_deadline& d, const char* op, io_awaiter** slot) {
        if (*slot) refuse_second(w, op);
        timeout_t left = d.left(op);
        scheduler* s = sock_.get_scheduler();
        if (!s) throw std::logic_error(std::string(op) + ": the socket's scheduler was destroyed");
        return retry_awaiter(
            *s, sock_.fileno(), w == want::write ? ops::wait_writable : ops::wait_readable, op, [](io_op&) { return -EAGAIN; },
            left, slot);
    }
    [[noreturn]] static void refuse_second(want w, const char* op) {
        throw std::logic_error(std::string(op) + ": another operation is already waiting to " +
                               (w == want::write ? "write" : "read") +
                               " on this ssl_socket (one reading and one writing coroutine at a time)");
    }

    // ---- whole operations, as coroutines over `st` (never over an object that moves)
    static task<std::size_t> recv_op(basic_tls_stream* st, std::span<char> room, const char* op, io_awaiter** slot) {
        if (*slot) refuse_second(want::read, op);
        if (room.empty()) co_return 0;
        op_deadline d(st->timeout());
        for (;;) {
            want w = want::none;
            int r = st->read_step(room, w, op);
            st->flush_quietly();
            if (r >= 0) co_return std::size_t(r);
            co_await st->wait(w, d, op, slot);
        }
    }

    // Sends what is left of earlier writes, then writes `data` (all of it if
    // `all`, else at least one byte) and sends it: → bytes of `data` taken.
    // *progress follows each step.
    static task<std::size_t> send_op(basic_tls_stream* st, std::span<const char> data, bool all, const char* op,
                                     io_awaiter** slot, std::size_t* progress) {
        if (*slot) refuse_second(want::write, op);
        op_deadline d(st->timeout());
        std::size_t done = 0;
        *progress = 0;
        for (;;) {
            want w = want::none;
            if (!st->flush_step(w, op)) {
                co_await st->wait(w, d, op, slot);
                continue;
            }
            if (done == data.size() || (!all && done > 0)) co_return done;
            int r = st->write_step(data.data() + done, data.size() - done, w, op);
            if (r < 0) { // a handshake message may be out first, for the peer to answer
                want out = want::none;
                while (!st->flush_step(out, op)) co_await st->wait(out, d, op, slot);
                co_await st->wait(w, d, op, slot);
                continue;
            }
            done += std::size_t(r);
            *progress = done;
        }
    }

    static task<> handshake_op(basic_tls_stream* st, const char* op, io_awaiter** slot) {
        if (*slot) refuse_second(want::write, op);
        op_deadline d(st->timeout());
        for (;;) {
            want w = want::none;
            bool done = st->handshake_step(w, op);
            want out = want::none;
            while (!st->flush_step(out, op)) co_await st->wait(out, d, op, slot);
            if (done) co_return;
            co_await st->wait(w, d, op, slot);
        }
    }

    // Sends close_notify, once (a repeated shutdown() sends only what is left
    // of it, and never reads); with `await_peer`, then reads (and drops)
    // until the peer's close_notify.
    static task<> shutdown_op(basic_tls_stream* st, bool await_peer, const char* op, io_awaiter** slot) {
        if (*slot) refuse_second(want::write, op);
        op_deadline d(st->timeout());
        for (;;) {
            want w = want::none;
            bool written = st->notify_sent_ || st->shutdown_step(w, op);
            want out = want::none;
            while (!st->flush_step(out, op)) co_await st->wait(out, d, op, slot);
            if (written) break;
            co_await st->wait(w, d, op, slot);
        }
        // SSL_shutdown is not called again: with application data still
        // arriving, OpenSSL would call that an error.
        while (await_peer && !(SSL_get_shutdown(st->ssl_) & SSL_RECEIVED_SHUTDOWN)) {
            char scrap[4096];
            int r = st->call([&] { return SSL_read(st->ssl_, scrap, sizeof scrap); });
            st->flush_quietly();
            if (r > 0) continue;
            want w = want::none;
            int e = SSL_get_error(st->ssl_, r);
            if (e == SSL_ERROR_ZERO_RETURN) break;
            if (!st->wants(e, w)) st->fail(e, op);
            co_await st->wait(w, d, op, slot);
        }
    }

    // ---- stream_transport, for file objects
    task<std::size_t> receive(std::span<char> room, const char* op, io_awaiter** slot) override {
        return recv_op(this, room, op, slot);
    }
    task<> send(std::string* buf, std::size_t* pos, const char* op, io_awaiter** slot) override {
        return send_buffer(this, buf, pos, op, slot);
    }
    void send_without_waiting(std::string& buf, std::size_t& pos) noexcept override {
        try {
            want w = want::none;
            if (!flush_step(w, "close")) return;
            while (pos < buf.size()) {
                int r = write_step(buf.data() + pos, buf.size() - pos, w, "close");
                if (r < 0) return;
                pos += std::size_t(r);
                if (!flush_step(w, "close")) return; // what is left goes with the connection
            }
        } catch (...) {
        }
    }

    timeout_t timeout() const noexcept {
        auto t = sock_.gettimeout();
        return t ? *t : no_timeout;
    }

    template <class Fn>
    int call(Fn fn) {
        ERR_clear_error();
        target_.last_errno = 0;
        target_.read_eof = false;
        return fn();
    }

  private:
    static task<> send_buffer(basic_tls_stream* st, std::string* buf, std::size_t* pos, const char* op,
                              io_awaiter** slot) {
        op_deadline d(st->timeout());
        for (;;) {
            want w = want::none;
            if (!st->flush_step(w, op)) {
                co_await st->wait(w, d, op, slot);
                continue;
            }
            if (*pos >= buf->size()) co_return;
            int r = st->write_step(buf->data() + *pos, buf->size() - *pos, w, op);
            if (r < 0) { // as in send_op
                want out = want::none;
                while (!st->flush_step(out, op)) co_await st->wait(out, d, op, slot);
                co_await st->wait(w, d, op, slot);
                continue;
            }
            *pos += std::size_t(r);
        }
    }

    static bool is_ip_address(const std::string& h) {
        ASN1_OCTET_STRING* a = a2i_IPADDRESS(h.c_str());
        if (!a) return false;
        ASN1_OCTET_STRING_free(a);
        return true;
    }

    bool wants(int e, want& w) const noexcept {
        if (e == SSL_ERROR_WANT_READ)
            w = want::read;
        else if (e == SSL_ERROR_WANT_WRITE)
            w = want::write;
        else
            return false;
        return true;
    }

    // The peer closed the TCP stream without close_notify.
    bool is_eof(int e) const noexcept {
        if (e == SSL_ERROR_SYSCALL) return target_.read_eof && ERR_peek_error() == 0;
        return e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
    }

    [[noreturn]] void fail(int e, const char* op) {
        flush_quietly(); // the alert OpenSSL wrote, if any, is the peer's to read
        if (e == SSL_ERROR_SYSCALL && target_.last_errno != 0) {
            ERR_clear_error();
            throw_error(-target_.last_errno, op);
        }
        if (is_eof(e)) {
            ERR_clear_error();
            throw ssl_eof_error(std::string(op) + ": EOF occurred in violation of protocol (the peer closed the "
                                                  "connection without close_notify)");
        }
        unsigned long first = ERR_peek_error();
        long verify = SSL_get_verify_result(ssl_);
        if (ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK) {
            std::string why = X509_verify_cert_error_string(verify);
            if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
                why = "Hostname mismatch, certificate is not valid for " + detail::quoted(hostname_);
            ERR_clear_error();
            throw ssl_certificate_error(std::string(op) + ": certificate verify failed: " + why, verify,
                                        X509_verify_cert_error_string(verify));
        }
        throw_ssl_queue(op, e == SSL_ERROR_SYSCALL ? SSL_ERROR_SYSCALL : SSL_ERROR_SSL);
    }

    cosock::socket sock_;
    std::shared_ptr<tls_context_state> ctx_; // keeps the SSL_CTX and its ALPN list alive
    SSL* ssl_ = nullptr;
    bool notify_sent_ = false; // our close_notify is out
    bio_target target_;
    std::string hostname_;
    bool suppress_ragged_eofs_;
    bool server_side_;
    bool eof_ = false;
};

} // namespace detail

// ---------------------------------------------------------------- ssl_socket

/// Python's ssl.SSLSocket: a TLS connection over a cosock::socket, made by
/// ssl_context::wrap_socket. Move-only; the destructor closes it (without
/// close_notify, as Python's close()). Moving it while an operation waits is
/// safe. Methods not marked noexcept throw std::system_error(EBADF) when it
/// is closed, and what the header comment lists.
class ssl_socket {
  public:
    /// A closed ssl_socket.
    ssl_socket() noexcept = default;
    ssl_socket(ssl_socket&&) noexcept = default;
    ssl_socket& operator=(ssl_socket&& other) noexcept {
        if (this != &other) {
            close();
            st_ = std::move(other.st_);
        }
        return *this;
    }
    ~ssl_socket() { close(); }

    /// `co_await recv(buf)` → bytes decrypted into buf (at most its size); 0 at
    /// the peer's close_notify, or when the peer closed without one and
    /// suppress_ragged_eofs (else ssl_eof_error). Uses bytes OpenSSL already
    /// holds before waiting. The socket's timeout bounds the whole call.
    template <mutable_buffer B>
    task<std::size_t> recv(B&& buf) {
        std::span<char> room{reinterpret_cast<char*>(std::ranges::data(buf)), std::ranges::size(buf)};
        detail::tls_stream* st = open("recv");
        return detail::tls_stream::recv_op(st, room, "recv", &st->waiting[0]);
    }

    /// `co_await send(buf)` → bytes sent (at least one, at most one record),
    /// once OpenSSL has written them to the socket.
    template <const_buffer B>
    task<std::size_t> send(const B& buf) {
        detail::tls_stream* st = open("send");
        return detail::tls_stream::send_op(st, chars(buf), false, "send", &st->waiting[1], &st->last_send_progress);
    }

    /// `co_await sendall(buf)` sends every byte, or throws; → bytes sent. The
    /// socket's timeout bounds the whole call. If it ends early (an error, a
    /// timeout, a stop, its task destroyed), last_send_progress() bytes of
    /// buf were taken: sent, or encrypted and held for the next write (send,
    /// sendall, shutdown, unwrap, or a file object's write or flush) to send
    /// first.
    template <const_buffer B>
    task<std::size_t> sendall(const B& buf) {
        detail::tls_stream* st = open("sendall");
        return detail::tls_stream::send_op(st, chars(buf), true, "sendall", &st->waiting[1], &st->last_send_progress);
    }

    /// How many bytes of the latest send/sendall's buffer were taken (see sendall).
    std::size_t last_send_progress() const noexcept { return st_ ? st_->last_send_progress : 0; }

    /// Python's makefile(mode, buffering, …): a file_object whose reads and
    /// writes go through TLS (see socket::makefile and file_object.hpp). The
    /// connection stays open until the ssl_socket and every file object made
    /// from it are closed. Throws as socket::makefile does.
    file_object makefile(std::string_view mode = "r", int buffering = -1, const file_options& options = {}) {
        detail::file_mode m = detail::parse_file_mode(mode, buffering, options.encoding, options.newline,
                                                      file_object::default_buffer_size);
        detail::tls_stream* st = open("makefile");
        return file_object(st->sock().share_fd("makefile"), m, mode, true, st_);
    }

    /// `co_await do_handshake()`: runs the handshake (after wrap_socket with
    /// do_handshake_on_connect = false). Throws ssl_certificate_error when a
    /// certificate is refused, ssl_error for a protocol failure (a plain-text
    /// peer), ssl_eof_error or std::system_error when the peer goes,
    /// timeout_error after the socket's timeout.
    template <int = 0>
    task<> do_handshake() {
        detail::tls_stream* st = open("do_handshake");
        return detail::tls_stream::handshake_op(st, "do_handshake", &st->waiting[1]);
    }

    /// `co_await shutdown()`: sends close_notify (after finishing any refused
    /// write); the connection stays open, the peer reads end of stream. Once
    /// sent, a repeated shutdown() does nothing: it never reads.
    template <int = 0>
    task<> shutdown() {
        detail::tls_stream* st = open("shutdown");
        return detail::tls_stream::shutdown_op(st, false, "shutdown", &st->waiting[1]);
    }

    /// `co_await unwrap()` → the plain socket, after sending close_notify and
    /// reading the peer's (application data still arriving before it is
    /// dropped). The ssl_socket is closed after it. Throws std::logic_error
    /// while file objects made from it are open.
    template <int = 0>
    task<cosock::socket> unwrap() {
        open("unwrap");
        if (st_.use_count() > 1) throw std::logic_error("unwrap: file objects made from the ssl_socket are open");
        return unwrap_task(std::move(st_));
    }

    /// Closes it; idempotent. Operations waiting on it end with
    /// std::system_error(EBADF). Sends no close_notify (co_await shutdown()
    /// first for that), as Python's close().
    void close() noexcept {
        if (!st_) return;
        st_->end_waits();
        if (st_.use_count() == 1) {
            // A record OpenSSL began must not be cut short on the wire if it can be helped.
            std::string none;
            std::size_t pos = 0;
            st_->send_without_waiting(none, pos);
        }
        st_.reset();
    }
    /// Whether it is closed (close(), unwrap(), moved from, or default-made).
    bool closed() const noexcept { return !st_; }

    /// The descriptor, or -1 once closed.
    int fileno() const noexcept { return st_ ? st_->sock().fileno() : -1; }
    /// The underlying socket, for getpeername(), getsockname(), setsockopt().
    /// Reading or writing it directly would corrupt the TLS stream.
    cosock::socket& socket() { return open("socket")->sock(); }
    const cosock::socket& socket() const { return open("socket")->sock(); }

    /// The socket's timeout (see socket::settimeout); it bounds each whole
    /// operation: recv, sendall, the handshake, shutdown.
    void settimeout(std::optional<std::chrono::nanoseconds> t) { open("settimeout")->sock().settimeout(t); }
    void settimeout(double seconds) { open("settimeout")->sock().settimeout(seconds); }
    std::optional<std::chrono::nanoseconds> gettimeout() const { return open("gettimeout")->sock().gettimeout(); }

    /// Bytes decrypted and waiting to be read (SSL_pending).
    std::size_t pending() const noexcept { return st_ ? std::size_t(SSL_pending(st_->ssl())) : 0; }

    /// The protocol negotiated, "TLSv1.3" or "TLSv1.2"; nullopt before the handshake.
    std::optional<std::string> version() const {
        if (!handshake_done()) return std::nullopt;
        return std::string(SSL_get_version(st_->ssl()));
    }
    /// The cipher negotiated; nullopt before the handshake.
    std::optional<cipher_info> cipher() const {
        const SSL_CIPHER* c = st_ && handshake_done() ? SSL_get_current_cipher(st_->ssl()) : nullptr;
        if (!c) return std::nullopt;
        return cipher_info{SSL_CIPHER_get_name(c), SSL_CIPHER_get_version(c), SSL_CIPHER_get_bits(c, nullptr)};
    }
    /// The ALPN protocol both sides chose; nullopt when none.
    std::optional<std::string> selected_alpn_protocol() const {
        if (!st_) return std::nullopt;
        const unsigned char* p = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(st_->ssl(), &p, &len);
        if (!p || len == 0) return std::nullopt;
        return std::string(reinterpret_cast<const char*>(p), len);
    }
    /// The server_hostname given to wrap_socket (empty: none).
    std::string server_hostname() const { return st_ ? st_->hostname() : std::string(); }
    /// Whether it was wrapped with server_side = true.
    bool server_side() const noexcept { return st_ && st_->server_side(); }

    /// The peer's certificate, decoded; nullopt when it sent none (a client
    /// not asked for one) or before the handshake. Unlike Python it is given
    /// even when not verified (cert_none): check verify_mode for that.
    std::optional<peer_certificate> getpeercert() const {
        X509* x = peer();
        if (!x) return std::nullopt;
        peer_certificate c;
        c.subject = name_text(X509_get_subject_name(x));
        c.issuer = name_text(X509_get_issuer_name(x));
        c.not_before = time_text(X509_get0_notBefore(x));
        c.not_after = time_text(X509_get0_notAfter(x));
        if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr)) {
            if (char* hex = BN_bn2hex(bn)) {
                c.serial_number = hex;
                OPENSSL_free(hex);
            }
            BN_free(bn);
        }
        if (auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr))) {
            for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
                GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
                if (g->type == GEN_DNS)
                    c.subject_alt_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                                                     std::size_t(ASN1_STRING_length(g->d.dNSName)));
            }
            GENERAL_NAMES_free(names);
        }
        X509_free(x);
        return c;
    }
    /// The peer's certificate in DER; empty when none.
    std::string getpeercert_der() const {
        X509* x = peer();
        if (!x) return {};
        unsigned char* der = nullptr;
        int len = i2d_X509(x, &der);
        std::string out = len > 0 ? std::string(reinterpret_cast<const char*>(der), std::size_t(len)) : std::string();
        OPENSSL_free(der);
        X509_free(x);
        return out;
    }

    /// The SSL object, for what cosock does not wrap (e.g. SSL_key_update).
    SSL* native_handle() const noexcept { return st_ ? st_->ssl() : nullptr; }

  private:
    friend class ssl_context;

    detail::tls_stream* open(const char* what) const {
        if (!st_) throw_error(-EBADF, std::string(what) + ": the ssl_socket is closed");
        return st_.get();
    }
    template <const_buffer B>
    static std::span<const char> chars(const B& b) noexcept {
        return {reinterpret_cast<const char*>(std::ranges::data(b)), std::ranges::size(b)};
    }
    bool handshake_done() const noexcept { return st_ && SSL_is_init_finished(st_->ssl()); }
    X509* peer() const noexcept { return st_ ? SSL_get1_peer_certificate(st_->ssl()) : nullptr; }

    static std::string name_text(const X509_NAME* n) {
        BIO* b = BIO_new(BIO_s_mem());
        X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
        std::string s = bio_text(b);
        BIO_free(b);
        return s;
    }
    static std::string time_text(const ASN1_TIME* t) {
        BIO* b = BIO_new(BIO_s_mem());
        ASN1_TIME_print(b, t);
        std::string s = bio_text(b);
        BIO_free(b);
        return s;
    }
    static std::string bio_text(BIO* b) {
        char* p = nullptr;
        long n = BIO_get_mem_data(b, &p);
        return n > 0 ? std::string(p, std::size_t(n)) : std::string();
    }

    template <int = 0>
    static task<cosock::socket> unwrap_task(std::shared_ptr<detail::tls_stream> st) {
        co_await detail::tls_stream::shutdown_op(st.get(), true, "unwrap", &st->waiting[1]);
        co_return std::move(st->sock());
    }

    std::shared_ptr<detail::tls_stream> st_;
};

template <int>
task<ssl_socket> ssl_context::wrap_socket(cosock::socket sock, wrap_options options) const {
    return wrap_task(st_, std::move(sock), std::move(options));
}

// A coroutine over a copy of the context: the ssl_context may go before it runs.
template <int>
task<ssl_socket> ssl_context::wrap_task(std::shared_ptr<detail::tls_context_state> ctx, cosock::socket sock,
                                               wrap_options options) {
    if (sock.fileno() < 0) throw_error(-EBADF, "wrap_socket: the socket is closed");
    if (sock.type() != SOCK_STREAM)
        throw std::invalid_argument("wrap_socket: TLS needs a stream socket (this one's type is " +
                                    std::to_string(sock.type()) + ")");
    if (!options.server_side && ctx->check_hostname && options.server_hostname.empty())
        throw std::invalid_argument("wrap_socket: check_hostname requires server_hostname");
    if (options.server_side && !ctx->server)
        throw std::invalid_argument("wrap_socket: server_side with a client context (use ssl_context::server())");
    if (!options.server_side && ctx->server)
        throw std::invalid_argument("wrap_socket: a client with a server context (use ssl_context::client())");
    ssl_socket s;
    s.st_ = std::make_shared<detail::tls_stream>(std::move(sock), ctx, options);
    if (options.do_handshake_on_connect) co_await s.do_handshake();
    co_return s;
}

} // namespace cosock
