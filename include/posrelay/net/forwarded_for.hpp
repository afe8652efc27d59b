// The client address of an HTTP request that came through proxies: X-Forwarded-For read
// right to left, believed only past addresses in --trusted-proxies. Pure.
#pragma once

#include <optional>
#include <string_view>

#include "posrelay/net/cidr.hpp"

namespace posrelay::net {

struct forwarded_client {
    // The client the header names; nullopt when the header is absent (empty) or malformed:
    // the caller then keeps the peer's address.
    std::optional<address> client;
    bool malformed = false;  // an entry walked is not an address (counted by the caller)
};

// `header`: the X-Forwarded-For field values in order, joined by ','. Only for a request
// whose peer is in `trusted`. Entries are walked from the right (the one the nearest proxy
// added); trusted addresses are skipped, the first untrusted one is the client. When every
// entry is trusted, the leftmost is the client. An entry is an IPv4 or IPv6 address, optionally
// "[v6]", "[v6]:port" or "v4:port", with spaces or tabs around it; anything else reached in
// the walk (empty entries included) makes the header malformed. Entries left of the client
// are not read: a client can write anything there.
[[nodiscard]] forwarded_client client_from_forwarded_for(std::string_view header,
                                                         const cidr_set& trusted);

// One X-Forwarded-For entry as an address (the grammar above); nullopt when it is not one.
[[nodiscard]] std::optional<address> forwarded_entry(std::string_view entry) noexcept;

}  // namespace posrelay::net
