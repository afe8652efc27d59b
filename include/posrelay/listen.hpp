// Listening sockets for a service on every io thread: one SO_REUSEPORT acceptor per
// io_context, so the kernel spreads connections and threads share nothing.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <vector>

#include "posrelay/config.hpp"
#include "posrelay/io_pool.hpp"

namespace posrelay {

struct listeners {
    std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors;  // i on pool.context(i)
    boost::asio::ip::tcp::endpoint bound;  // port 0 in `where` → the port actually bound
};

// Binds `where` once per io thread. A host name is resolved once, synchronously: call at
// start-up, never on an io thread. Throws boost::system::system_error.
[[nodiscard]] listeners listen_on_every_thread(io_pool& pool, const endpoint& where);

}  // namespace posrelay
