// The PROXY protocol (HAProxy's spec, v1 text and v2 binary) at the start of a connection,
// sans-io: what the bytes received so far say, and what a listener does with them. The
// Asio glue (http server, terminal gateway) only reads bytes and keeps a deadline.
//
// A listener with the PROXY protocol on serves two kinds of peers:
//   peer in --trusted-proxies  → must open with a header; the header's source is the client
//   any other peer             → must not (a header is a spoofing attempt); served as is
// Header sizes are bounded: v1 ≤ 107 bytes, v2 ≤ 16 + proxy_v2_max_payload.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "posrelay/net/cidr.hpp"

namespace posrelay::net {

inline constexpr std::size_t proxy_v1_max_bytes = 107;
inline constexpr std::size_t proxy_v2_max_payload = 1024;  // addresses plus TLVs
inline constexpr std::size_t proxy_max_bytes = 16 + proxy_v2_max_payload;

enum class proxy_status : std::uint8_t {
    need_more,  // a prefix of a header: read more
    done,       // a complete header of `size` bytes
    not_proxy,  // cannot be the start of a header
    invalid,    // the start of a header, but malformed or too large
};

struct proxy_header {
    std::uint8_t version = 0;  // 1 or 2
    // The client as the proxy saw it; nullopt for v2 LOCAL, v1 UNKNOWN and address families
    // posrelay does not take (UNSPEC, UNIX, UDP): the connection's own peer stands.
    std::optional<address> source;
    std::uint16_t source_port = 0;
};

struct proxy_parse {
    proxy_status status = proxy_status::need_more;
    std::size_t size = 0;    // done: bytes of the header (what follows is the payload)
    std::string_view error;  // invalid: why, for logs
    proxy_header header;     // done
};

// Parses a header at the start of `bytes` (everything received so far).
[[nodiscard]] proxy_parse parse_proxy_header(std::string_view bytes) noexcept;

// What a listener with the PROXY protocol does with the bytes received so far.
enum class preamble_action : std::uint8_t { read_more, proceed, refuse };
struct preamble_decision {
    preamble_action action = preamble_action::read_more;
    std::size_t consumed = 0;       // proceed: header bytes to drop before the payload
    std::optional<address> client;  // proceed: the header's source (nullopt: the peer)
    std::uint16_t client_port = 0;
    // refuse: the metric label: untrusted_peer (a header from a peer not trusted), missing (a
    // trusted peer sent no header), malformed.
    std::string_view reason;
};
// Every reason a listener refuses a connection at its start: decide_preamble()'s, and timeout
// (no decision within the listener's deadline). The label values of the listeners' counters.
inline constexpr std::string_view refused_untrusted_peer = "untrusted_peer";
inline constexpr std::string_view refused_missing = "missing";
inline constexpr std::string_view refused_malformed = "malformed";
inline constexpr std::string_view refused_timeout = "timeout";
inline constexpr std::array<std::string_view, 4> proxy_refusal_reasons = {
    refused_untrusted_peer, refused_missing, refused_malformed, refused_timeout};
[[nodiscard]] preamble_decision decide_preamble(std::string_view received,
                                                bool peer_trusted) noexcept;

}  // namespace posrelay::net
