// Everything cosock offers, in one include.
#pragma once

#include <cosock/address.hpp>
#include <cosock/buffer.hpp>
#include <cosock/channel.hpp>
#include <cosock/constants.hpp>
#include <cosock/create.hpp>
#include <cosock/error.hpp>
#include <cosock/message.hpp>
#include <cosock/file_object.hpp>
#include <cosock/resolve.hpp>
#include <cosock/scheduler.hpp>
#include <cosock/select.hpp>
#include <cosock/detail/platform.hpp>
#if !COSOCK_WINDOWS
#include <cosock/signal.hpp> // POSIX signals
#include <cosock/unix.hpp>   // descriptor passing, peer credentials
#endif
#include <cosock/socket.hpp>
#include <cosock/task.hpp>
#include <cosock/threads.hpp>
#include <cosock/time.hpp>
#include <cosock/version.hpp>
#include <cosock/when.hpp>
