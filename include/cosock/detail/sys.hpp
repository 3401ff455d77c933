// Every system call cosock makes goes through here (liburing's own calls
// aside, which already return -errno). Each wrapper retries EINTR (PEP 475)
// and returns the result, or -errno on failure: the same shape as an io_uring
// completion, so one error path serves every backend.
//
// This is the seam a port replaces: sys_posix.hpp for Linux and other POSIX
// systems, sys_windows.hpp for winsock. Both offer the same functions over
// `int` descriptors (on Windows a SOCKET, which carries 32 significant bits)
// and report errors as errno values, so the layers above never ask which
// system they run on. os_category() is the category those values belong to.
#pragma once

#include <cosock/detail/platform.hpp>

#if defined(_WIN32)
#include <cosock/detail/sys_windows.hpp>
#else
#include <cosock/detail/sys_posix.hpp>
#endif
