// The commit interface: where a verified status_update goes before anyone is told
// "accepted". The Redis store implements it durably; memory_commit_sink is for tests
// and for running without Redis.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "posrelay/ingest/notification_rules.hpp"
#include "posrelay/ingest/status_update.hpp"

namespace posrelay::ingest {

enum class commit_outcome : std::uint8_t {
    new_update,  // stored and fanned out
    duplicate,   // this status was already committed for the order
    stale,       // older than (or illegal after) the stored status: ignored
    confirming,  // would change whether the order is paid: kept as a claim, applied only once
                 // Midtrans confirms it (include/posrelay/midtrans/confirmation.hpp)
    refused,     // bound to another merchant, amount or transaction (mismatch): nothing changed
};
// How many outcomes there are: the size of every table indexed by commit_outcome.
inline constexpr std::size_t commit_outcome_count = 5;
static_assert(static_cast<std::size_t>(commit_outcome::refused) + 1 == commit_outcome_count);
[[nodiscard]] std::string_view to_string(commit_outcome o) noexcept;

struct commit_result {
    // Set when the update could not be committed (store down, timeout). The caller must
    // then not acknowledge the update (answer 503 so Midtrans retries).
    boost::system::error_code ec;
    commit_outcome outcome = commit_outcome::new_update;
    // The id of the event appended for a new update ("" otherwise, or when the sink has none).
    std::string event_id;
    // Why a `refused` update was refused (none otherwise).
    binding_mismatch mismatch = binding_mismatch::none;
};

class commit_sink {
public:
    virtual ~commit_sink() = default;
    // Commits `u` atomically: binding check (ingest::check_binding), dedup, transition
    // check, order update, event. Completes on
    // the caller's executor once the update is durable (or with ec set). `u` is taken by
    // value: the sink owns what it needs, nothing must outlive the call.
    [[nodiscard]] virtual boost::asio::awaitable<commit_result> commit(status_update u) = 0;
    // False while commits cannot succeed (e.g. the store is unreachable): /readyz uses it.
    [[nodiscard]] virtual bool ready() const noexcept = 0;
};

}  // namespace posrelay::ingest
