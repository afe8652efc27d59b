// "Acknowledged means replicated" (--redis-min-replicas-ack): after a write whose success is
// answered to a client, WAIT until that many replicas have it, or answer an error.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>
#include <string_view>

#include "posrelay/metrics/registry.hpp"
#include "posrelay/store/redis_client.hpp"
#include "posrelay/store/redis_connection.hpp"

namespace posrelay::store {

// WAIT's outcome for `wanted` replicas: `ec` (the transport's error) as is; an error reply a
// protocol_error; fewer than `wanted` replicas replicas_not_acknowledged; else success.
[[nodiscard]] boost::system::error_code wait_outcome(const boost::system::error_code& ec,
                                                     const redis_reply& reply,
                                                     unsigned wanted) noexcept;

struct replica_ack_options {
    unsigned replicas = 0;  // 0: nothing is sent, success at once
    std::chrono::milliseconds timeout{500};
};

// The one place a write waits for its replicas: `WAIT replicas timeout` on `link`, the
// connection that made the write (WAIT covers that connection's writes up to now), after it.
// `route_key` is the written key: on a Cluster the touch and the WAIT go to the connection to
// its slot's primary (redis_client::connection_for), and WAITs are shared per that connection.
// `touch_ttl`: the command answered without writing (a duplicate, a stale update, an existing
// registration) — its write was made earlier, maybe by another connection or node, so a write on
// that key is made first (PEXPIRE route_key touch_ttl GT: the key's TTL extended to touch_ttl from
// now), putting this connection's replication offset past it. Completes with wait_outcome();
// replicas_not_acknowledged is counted in `short_count`. Writes on one connection share WAITs (a
// write joins the WAIT already sent and unanswered on its connection, which covers it:
// src/store/replica_ack.cpp).
[[nodiscard]] boost::asio::awaitable<boost::system::error_code> wait_replicas(
    redis_client& link, std::string_view route_key, const replica_ack_options& o,
    std::optional<std::chrono::milliseconds> touch_ttl, metrics::counter& short_count);

}  // namespace posrelay::store
