// The operating system's socket headers, included in one place. On Windows
// this is winsock; everywhere else POSIX. Nothing else in cosock includes a
// system socket header directly, so a port starts here and in sys.hpp.
//
// On Windows, FD_SETSIZE is raised before winsock2.h (its fd_set is an array
// of SOCKETs, 64 by default); a program that includes winsock2.h before
// cosock gets its own value, which the select backend reports when full.
#pragma once

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef FD_SETSIZE
#define FD_SETSIZE 4096
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <afunix.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#endif

#include <cerrno>

#if defined(_WIN32)
#include <cstddef>

// What POSIX names and winsock lacks: the flags are no-ops there (sockets
// are made non-blocking and uninheritable by sys_windows.hpp; a send never
// raises SIGPIPE), and recvfrom/sendto keep their record in a msghdr of the
// same shape as POSIX's, which sys_windows.hpp hands to recvfrom/sendto.
#ifndef SOCK_NONBLOCK
#define SOCK_NONBLOCK 0
#endif
#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC 0
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#ifndef EAI_SYSTEM // getaddrinfo says WSA codes only; Linux's value, never met
#define EAI_SYSTEM (-11)
#endif
#ifndef SHUT_RD
#define SHUT_RD SD_RECEIVE
#define SHUT_WR SD_SEND
#define SHUT_RDWR SD_BOTH
#endif

namespace cosock::detail {
struct iovec {
    void* iov_base;
    std::size_t iov_len;
};
struct msghdr {
    void* msg_name;
    socklen_t msg_namelen;
    iovec* msg_iov;
    std::size_t msg_iovlen;
    void* msg_control;
    std::size_t msg_controllen;
    int msg_flags;
};
} // namespace cosock::detail
#define COSOCK_WINDOWS 1
#else
#define COSOCK_WINDOWS 0
#endif

// epoll is Linux's: elsewhere its backend is compiled out and refused when
// asked for by name.
#if defined(__linux__)
#define COSOCK_HAS_EPOLL 1
#else
#define COSOCK_HAS_EPOLL 0
#endif
