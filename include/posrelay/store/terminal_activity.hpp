// Terminal activity: each terminal's presence (which node and session serve it, what it was
// sent and acknowledged) and each order's delivery timeline (per recipient terminal and seq:
// when the event was first written to its socket and when it was acknowledged), kept in Redis
// under the store's hash tag so that every node reads the same (proto-docs/redis-keys.md,
// "Presence and delivery timelines"). The Redis store implements it; tests/support has an
// in-memory fake. Writes come in batches of one store (one script call, one slot).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "posrelay/store/order_store.hpp"

namespace posrelay::store {

// What one session of a terminal reports, coalesced over a batch. Fields left unset are not
// changed. Every write but `open` applies only while the presence still names `session`: a
// session replaced by a newer one (on any node) never overwrites or ends the newer one's.
struct presence_update {
    std::string terminal;
    std::string session;  // unique per connection
    bool open = false;    // the session started: the fields below replace the record's
    std::string node, transport, remote, epoch;
    bool subscribe_store = false;
    std::int64_t connected_ms = 0;
    std::optional<std::uint64_t> sent_seq;   // newest seq written to the socket
    std::optional<std::uint64_t> acked_seq;  // newest seq acknowledged
    std::int64_t alive_until_ms = 0;         // 0: unchanged
    std::int64_t closed_ms = 0;              // the session ended (0: still open)
};

// One delivery mark of an order's event: `written_ms` and/or `acked_ms` (0: not in this mark).
struct timeline_mark {
    std::string order_id;
    std::string terminal;
    std::uint64_t seq = 0;
    std::int64_t written_ms = 0;
    std::int64_t acked_ms = 0;
};

// The marks of one store, written in one call.
struct activity_batch {
    std::vector<presence_update> presence;
    std::vector<timeline_mark> timeline;
};

// A terminal's presence record as stored ("" / 0 for what it lacks), with its counter.
struct presence_record {
    std::string terminal;
    bool known = false;  // a presence record exists (it expires --stream-ttl after its last write)
    std::string session, node, transport, remote, epoch;
    bool subscribe_store = false;
    std::int64_t connected_ms = 0, alive_until_ms = 0, closed_ms = 0;
    std::uint64_t sent_seq = 0, acked_seq = 0;
    // The terminal's counter (its newest event) and the epoch it counts in; 0 and "" if none.
    std::uint64_t last_seq = 0;
    std::string counter_epoch;
};

// A page of a store's terminals, in terminal id order; `next` is the cursor of the next page
// ("" when this is the last).
struct presence_page {
    std::vector<presence_record> terminals;
    std::string next;
};

// One entry of an order's delivery timeline.
struct timeline_entry {
    std::string terminal;
    std::uint64_t seq = 0;
    std::int64_t written_ms = 0;  // 0: not recorded
    std::int64_t acked_ms = 0;    // 0: not acknowledged (yet)
};
struct delivery_timeline {
    std::vector<timeline_entry> entries;  // by terminal, then seq
    std::uint64_t omitted = 0;            // marks not kept (the bound was reached)
};

// Bounds of what is kept.
inline constexpr std::size_t timeline_max_entries = 32;  // per order: (terminal, seq) entries
inline constexpr std::size_t presence_page_max = 500;    // terminals per listed page

// Parses a timeline hash as stored (fields "TERMINAL|SEQ" → "WRITTEN_MS|ACKED_MS", and
// "omitted"); fields it does not know are skipped.
[[nodiscard]] delivery_timeline parse_timeline(const order_record& fields);

class terminal_activity {
public:
    virtual ~terminal_activity() = default;

    // Writes one store's marks (one atomic call). A timeline mark of an order whose record is
    // gone is dropped; at most timeline_max_entries entries are kept per order (the order's own
    // terminal may use as many again), the others counted as `omitted`.
    [[nodiscard]] virtual boost::asio::awaitable<boost::system::error_code> write_activity(
        std::string store, activity_batch batch) = 0;
    // The presence of one terminal (known false when it has no record).
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, presence_record>>
    read_presence(std::string store, std::string terminal) = 0;
    // The store's terminals with a presence record, from after `cursor` ("" = the first), at
    // most `limit` (≤ presence_page_max).
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, presence_page>>
    list_presence(std::string store, std::string cursor, std::size_t limit) = 0;
    // The order's delivery timeline (empty when none was recorded).
    [[nodiscard]] virtual boost::asio::awaitable<
        std::pair<boost::system::error_code, delivery_timeline>>
    read_timeline(std::string store, std::string order_id) = 0;
};

}  // namespace posrelay::store
