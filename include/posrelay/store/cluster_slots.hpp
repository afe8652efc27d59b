// Redis Cluster decisions, pure (no sockets): the hash slot of a key, the key that routes a
// command, -MOVED/-ASK redirections, CLUSTER SLOTS replies as a slot map, slot coverage.
// The client that uses them: include/posrelay/store/redis_client.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "posrelay/store/redis_connection.hpp"

namespace posrelay::store::cluster {

inline constexpr std::size_t slot_count = 16384;

// CRC16-CCITT (XModem: poly 0x1021, init 0), the checksum Redis Cluster hashes keys with.
[[nodiscard]] std::uint16_t crc16(std::string_view s) noexcept;
// The slot of a key, as CLUSTER KEYSLOT: when the key has a '{' followed later by a '}' with
// at least one byte between the first '{' and the first '}' after it, only those bytes are
// hashed (the hash tag); otherwise the whole key.
[[nodiscard]] std::uint16_t key_hash_slot(std::string_view key) noexcept;

// The argument whose slot decides where a command goes: EVAL/EVALSHA(_RO)/FCALL(_RO): the first
// key when numkeys >= 1 (nullopt with 0); XREAD/XREADGROUP: the first key after STREAMS;
// commands without a key (PING, INFO, SCRIPT, CLUSTER, ASKING, WAIT, CLIENT, ...): nullopt.
// Every other command (SPUBLISH, SSUBSCRIBE and PUBLISH: the channel): args[1]. Names are
// matched case-insensitively.
[[nodiscard]] std::optional<std::string_view> command_route_key(redis_args args) noexcept;

// A node's address, "host:port" as Redis names it.
struct node_address {
    std::string host;
    std::uint16_t port = 0;
    [[nodiscard]] std::string name() const;  // host:port ([host]:port for IPv6)
    friend bool operator==(const node_address&, const node_address&) = default;
};
// "host:port" (host may be an IPv6 address: the port follows the last ':'); nullopt if not one.
[[nodiscard]] std::optional<node_address> parse_node_address(std::string_view s);

// An error reply "MOVED <slot> <host:port>" or "ASK <slot> <host:port>".
struct redirect {
    enum class kind : std::uint8_t { moved, ask };
    kind type = kind::moved;
    std::uint16_t slot = 0;
    node_address node;
};
// The redirection an error reply asks for; nullopt for any other reply.
[[nodiscard]] std::optional<redirect> parse_redirect(const redis_reply& r);

// Errors of a cluster in motion: the slot is migrating with some of the keys elsewhere, or
// the node is resharding (TRYAGAIN: retry soon); the cluster is down (CLUSTERDOWN); the keys
// are in different slots (CROSSSLOT: a bug of the caller, never retried).
enum class cluster_error : std::uint8_t { none, tryagain, clusterdown, crossslot };
[[nodiscard]] cluster_error classify_error(const redis_reply& r) noexcept;

// Who serves each slot: the primaries, and per slot the index of its primary in `nodes`, or
// no_owner.
struct slot_map {
    static constexpr std::uint16_t no_owner = 0xFFFF;
    std::vector<node_address> nodes;
    std::array<std::uint16_t, slot_count> owner{};
    slot_map() { owner.fill(no_owner); }

    [[nodiscard]] std::optional<std::size_t> node_of(std::string_view name) const;
    // The number of slots that have an owner.
    [[nodiscard]] std::size_t assigned() const noexcept;
};

// The slot map of a CLUSTER SLOTS reply: [[start, end, [host, port, id...], replicas...]...].
// A host "" (or "?") means the node that answered: `answered_by`'s host. nullopt when the
// reply is not one (an error reply, a malformed entry, a slot out of range); at most 1,000
// primaries are accepted.
[[nodiscard]] std::optional<slot_map> parse_cluster_slots(const redis_reply& r,
                                                          const node_address& answered_by);

// How many of the 16384 slots have an owner whose node `connected(node index)` holds.
template <typename Pred>
[[nodiscard]] std::size_t slots_covered(const slot_map& m, Pred connected) {
    std::vector<char> up(m.nodes.size());
    for (std::size_t i = 0; i < up.size(); ++i)
        up[i] = connected(i) ? 1 : 0;
    std::size_t n = 0;
    for (const auto o : m.owner)
        n += o != slot_map::no_owner && o < up.size() && up[o];
    return n;
}

// Whether a node on a Cluster is in service with `covered` of the 16384 slots: all of them; or
// some, once every slot has been covered since the node started (a primary lost later: the node
// serves the other slots, "degraded") or once the startup grace is over (a primary already down
// when the node starts must not keep it out of service while its peers serve the rest). Before
// either, a node still connecting to its shards is not ready: a load balancer would send it
// requests that fail with 503.
[[nodiscard]] constexpr bool in_service(std::size_t covered, bool whole_once,
                                        bool grace_over) noexcept {
    if (covered >= slot_count) return true;
    return covered > 0 && (whole_once || grace_over);
}

}  // namespace posrelay::store::cluster
