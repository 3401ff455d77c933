#!/usr/bin/env python3
"""Clients that leave a TLS echo server at awkward moments; the server must
survive them all and still serve.

    python3 bench/tls_disconnects.py BUILD/bench/echo_tls_epoll [ARGS...]

Starts the server (with a throw-away certificate made by the openssl command,
and ARGS, e.g. --backend epoll), then, each with a FIN and again with a reset:
leaves before the ClientHello, in the middle of it, after it (mid-handshake),
in the middle of a 4 KiB record's header and of its body, and right after a
whole record, before reading the echo; then sends bytes that are not TLS. Then
checks the server is alive, echoes over TLS, and holds no connection it
should have closed. Exit status 0 if so.
"""

import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time


def tls_client():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def start(port, ctx):
    """A connection and its TLS state in memory, the ClientHello not yet sent."""
    sock = socket.create_connection(("127.0.0.1", port))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return sock, tls, incoming, outgoing


def handshake(port, ctx):
    """A connection that finished its handshake: (socket, TLS state, outgoing BIO)."""
    sock, tls, incoming, outgoing = start(port, ctx)
    sock.sendall(outgoing.read())
    while True:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed during the handshake")
        incoming.write(data)
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
    sock.sendall(outgoing.read())  # the client's Finished
    return sock, tls, outgoing


def record(port, ctx):
    """A connection after its handshake, and one 4 KiB record to send on it."""
    sock, tls, outgoing = handshake(port, ctx)
    tls.write(b"x" * 4096)
    return sock, outgoing.read()


def leave(sock, reset):
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        server = subprocess.Popen([sys.argv[1], "--port", "0", "--max-seconds", "60", "--cert", cert, "--key", key]
                                  + sys.argv[2:], stdout=subprocess.PIPE, text=True)
        try:
            port = int(server.stdout.readline().split()[1])
            fds_before = len(os.listdir(f"/proc/{server.pid}/fd"))
            ctx = tls_client()
            cases = 0
            for reset in (False, True):
                for cut in ("before the ClientHello", "mid-ClientHello", "after the ClientHello",
                            "mid-record header", "mid-record", "before reading the echo"):
                    if cut == "before the ClientHello":
                        sock = socket.create_connection(("127.0.0.1", port))
                    elif "ClientHello" in cut:
                        sock, _, _, outgoing = start(port, ctx)
                        hello = outgoing.read()
                        sock.sendall(hello[:40] if cut.startswith("mid") else hello)
                    else:
                        sock, rec = record(port, ctx)
                        sock.sendall(rec[:3] if cut == "mid-record header" else rec[:1000] if cut == "mid-record"
                                     else rec)
                    leave(sock, reset)
                    cases += 1
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n" * 10)
            sock.close()
            cases += 1
            # Still serving?
            with socket.create_connection(("127.0.0.1", port)) as raw, \
                    ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"still there?")
                echoed = s.recv(100)
            time.sleep(0.5)
            if server.poll() is not None:
                sys.exit(f"FAILED: the server died (status {server.returncode})")
            fds_after = len(os.listdir(f"/proc/{server.pid}/fd"))
            ok = echoed == b"still there?" and fds_after <= fds_before
            print(f"{os.path.basename(sys.argv[1])}: {cases} clients left early; echo afterwards "
                  f"{'right' if echoed == b'still there?' else 'WRONG'}; descriptors {fds_before} before, "
                  f"{fds_after} after: {'ok' if ok else 'FAILED'}")
            sys.exit(0 if ok else 1)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
