#!/usr/bin/env python3
"""The CPython end of test_messages.cpp's socket pair: descriptor passing and
sendmsg/recvmsg through Python's own socket module. argv[1] is the socket's
descriptor. Each step answers what the C++ side checks."""
import array
import os
import socket
import sys

s = socket.socket(fileno=int(sys.argv[1]))
s.settimeout(20)

# 1. Two descriptors from cosock's send_fds; answer with a gathered sendmsg.
msg, fds, flags, _ = socket.recv_fds(s, 100, 4)
assert msg == b"fds" and len(fds) == 2 and flags == 0, (msg, fds, flags)
texts = [os.read(fd, 100) for fd in fds]
for fd in fds:
    os.close(fd)
s.sendmsg([b"got ", msg, b":", texts[0], b"|", texts[1]])


def next_step():
    """Waits for cosock to have read the last answer: a stream keeps no
    message boundaries, and bytes read without room for their descriptors
    lose them."""
    assert s.recv(1) == b"n"


# 2. A pipe of our own, through Python's send_fds.
next_step()
r, w = os.pipe()
os.write(w, b"from python")
socket.send_fds(s, [b"py"], [r])
os.close(r)
os.close(w)

# 3. Three descriptors in a hand-made SCM_RIGHTS item; cosock has room for one.
next_step()
three = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]
s.sendmsg([b"three"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", three))])
for fd in three:
    os.close(fd)

# 4. cosock's sendmsg of three buffers with one descriptor; say what arrived.
data, ancdata, flags, _ = s.recvmsg(100, socket.CMSG_SPACE(4))
assert len(ancdata) == 1, ancdata
level, kind, payload = ancdata[0]
fd = array.array("i", payload)[0]
text = os.read(fd, 100).decode()
os.close(fd)
s.sendall(b"recvmsg %s level=%d type=%d len=%d flags=%d read=%s"
          % (data, level, kind, len(payload), flags, text.encode()))
s.close()
