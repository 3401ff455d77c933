// Python's socket module constants, as cosock::af_inet, cosock::sock_stream, …
// They are the platform's values, so any other one (AF_PACKET, IPPROTO_SCTP, …)
// can be passed as a plain int wherever these are taken.
#pragma once

#include <cosock/detail/platform.hpp>

namespace cosock {

/// Address families, as Python's socket.AF_*.
inline constexpr int af_unspec = AF_UNSPEC;
inline constexpr int af_inet = AF_INET;
inline constexpr int af_inet6 = AF_INET6;
inline constexpr int af_unix = AF_UNIX;
#ifdef AF_PACKET
/// Linux's packet sockets, as Python's socket.AF_PACKET (not on Windows).
inline constexpr int af_packet = AF_PACKET;
#endif

/// Socket types, as Python's socket.SOCK_*.
inline constexpr int sock_stream = SOCK_STREAM;
inline constexpr int sock_dgram = SOCK_DGRAM;
inline constexpr int sock_raw = SOCK_RAW;
inline constexpr int sock_seqpacket = SOCK_SEQPACKET;

/// shutdown()'s `how`, as Python's socket.SHUT_*.
inline constexpr int shut_rd = SHUT_RD;
inline constexpr int shut_wr = SHUT_WR;
inline constexpr int shut_rdwr = SHUT_RDWR;

/// Flags for recv, send and their kin, as Python's socket.MSG_*.
inline constexpr int msg_peek = MSG_PEEK;
inline constexpr int msg_oob = MSG_OOB;
inline constexpr int msg_waitall = MSG_WAITALL;
inline constexpr int msg_trunc = MSG_TRUNC;

/// Socket-level options for setsockopt and getsockopt, as Python's socket.SOL_SOCKET and SO_*.
inline constexpr int sol_socket = SOL_SOCKET;
inline constexpr int so_reuseaddr = SO_REUSEADDR;
inline constexpr int so_keepalive = SO_KEEPALIVE;
inline constexpr int so_rcvbuf = SO_RCVBUF;
inline constexpr int so_sndbuf = SO_SNDBUF;
inline constexpr int so_error = SO_ERROR;
inline constexpr int so_linger = SO_LINGER;
inline constexpr int so_broadcast = SO_BROADCAST;
#ifdef SO_REUSEPORT
/// Python's socket.SO_REUSEPORT, where the system has it (not on Windows).
inline constexpr int so_reuseport = SO_REUSEPORT;
#endif

/// Protocols and protocol-level options, as Python's socket.IPPROTO_*, TCP_NODELAY and IPV6_V6ONLY.
inline constexpr int ipproto_tcp = IPPROTO_TCP;
inline constexpr int ipproto_udp = IPPROTO_UDP;
inline constexpr int ipproto_ipv6 = IPPROTO_IPV6;
inline constexpr int tcp_nodelay = TCP_NODELAY;
inline constexpr int ipv6_v6only = IPV6_V6ONLY;

} // namespace cosock
