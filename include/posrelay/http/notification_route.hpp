// POST /v1/midtrans/notifications: parse (simdjson) → check the signed fields and their
// consistency (ingest::check_update) → verify signature_key → commit (which refuses an update
// bound to another merchant, amount or transaction) → answer. 200 only after the commit returned;
// every refusal has a JSON body naming the problem, is counted by reason and logged without
// secrets.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "posrelay/http/types.hpp"
#include "posrelay/ingest/commit_sink.hpp"
#include "posrelay/ingest/notification_parser.hpp"
#include "posrelay/ingest/notification_verifier.hpp"
#include "posrelay/metrics/registry.hpp"

namespace posrelay::http {

class notification_route {
public:
    // `threads`: one parser per io thread (request_context::thread_index picks it).
    // `verifier` and `sink` must outlive the route.
    notification_route(std::size_t threads, std::size_t max_body_bytes,
                       const ingest::verifier_slot& verifier, ingest::commit_sink& sink,
                       metrics::registry& reg);

    // Never throws; completes when the answer is ready (after the commit for a valid one).
    [[nodiscard]] boost::asio::awaitable<response> handle(request& req, const request_context& ctx);

    // Counts a refusal made before the handler ran (e.g. body too large at header time).
    void count_rejection(std::string_view reason);

    // Called on the io thread with the order_id of every notification committed as a claim
    // (commit_outcome::confirming), after it was committed and before the 200 is sent: it
    // starts the confirmation with Midtrans. Set before the server starts.
    void on_confirming(std::function<void(std::string)> f) { on_confirming_ = std::move(f); }

    // --audit-log: one info line per accepted notification ("msg":"notification": order_id,
    // status, outcome, merchant, commit_ms, client, remote). Set before the server starts.
    void audit(bool on) noexcept { audit_ = on; }

private:
    std::optional<response> refuse_unbelieved(ingest::status_update& u, const request_context& ctx);
    response reject(unsigned status, std::string_view reason, std::string_view message,
                    std::string_view field, std::string_view order_id, const request_context& ctx,
                    bool security = false);

    std::vector<std::unique_ptr<ingest::notification_parser>> parsers_;
    const ingest::verifier_slot& verifier_;
    ingest::commit_sink& sink_;
    metrics::registry& registry_;
    metrics::counter* accepted_[ingest::commit_outcome_count] = {};  // by commit_outcome
    std::function<void(std::string)> on_confirming_;
    bool audit_ = true;
    std::vector<std::pair<std::string, metrics::counter*>> rejected_;
};

}  // namespace posrelay::http
