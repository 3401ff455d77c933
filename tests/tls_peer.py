#!/usr/bin/env python3
"""Python's ssl module as the peer of cosock's TLS tests.

  tls_peer.py server CERT KEY   listens on 127.0.0.1, prints "listening on 127.0.0.1:PORT",
                                serves one connection: reads a line, sends it back upper-cased,
                                prints "python got: LINE", then unwraps (close_notify both ways).
  tls_peer.py client PORT CAFILE  connects to localhost:PORT verifying the server with CAFILE,
                                sends "ping from python\\n", prints "python got: LINE" for the
                                line it reads back, then unwraps.
  tls_peer.py echo-server CERT KEY  listens as "server" does, serves one connection: sends back
                                every byte until the client's close_notify, then sends its own;
                                prints "python echoed N bytes".
  tls_peer.py pipeline PORT CAFILE N  sends N pipelined HTTP/1.1 requests for / (the last with
                                "Connection: close") in one write, reads to the end of the stream
                                (a missing close_notify is an error, not an end), prints
                                "responses: K, 200s: M, clean end".
"""
import socket
import ssl
import sys


def read_line(s):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def serve_one(cert, key, **wrap):
    """Listens on 127.0.0.1 (printing the port), accepts one connection and
    returns it wrapped, server side."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", 0)) as srv:
        print("listening on 127.0.0.1:%d" % srv.getsockname()[1], flush=True)
        srv.settimeout(30)
        conn, _ = srv.accept()
    conn.settimeout(30)
    return ctx.wrap_socket(conn, server_side=True, **wrap)


def main():
    mode = sys.argv[1]
    if mode == "server":
        with serve_one(sys.argv[2], sys.argv[3]) as s:
            line = read_line(s)
            s.sendall(line.upper())
            print("python got: " + line.decode().rstrip("\n"), flush=True)
            s.unwrap().close()
    elif mode == "echo-server":
        with serve_one(sys.argv[2], sys.argv[3], suppress_ragged_eofs=False) as s:
            total = 0
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                s.sendall(chunk)
                total += len(chunk)
            s.unwrap().close()
            print("python echoed %d bytes" % total, flush=True)
    elif mode == "pipeline":
        ctx = ssl.create_default_context(cafile=sys.argv[3])
        n = int(sys.argv[4])
        request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        last = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
                s.sendall(request * (n - 1) + last)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                print("responses: %d, 200s: %d, clean end" % (data.count(b"HTTP/1.1 "), data.count(b"HTTP/1.1 200 OK")),
                      flush=True)
    else:
        ctx = ssl.create_default_context(cafile=sys.argv[3])
        with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"ping from python\n")
                line = read_line(s)
                print("python got: " + line.decode().rstrip("\n") + " (" + s.version() + ")", flush=True)
                s.unwrap().close()


if __name__ == "__main__":
    main()
