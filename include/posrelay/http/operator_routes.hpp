// The operator HTTP API, authenticated by a bearer token (POSRELAY_OPERATOR_TOKEN):
//   GET  /v1/orders/{order_id}   the stored order with its status history
//   POST /v1/orders              register an order created outside posrelay, to route it
//   GET  /v1/stores/{store}/terminals[/{id}]   terminal presence (src/http/presence_routes.cpp)
//   POST /v1/stores/{store}/terminals/{id}/revoke    revoke a terminal's tokens (every node)
//   POST /v1/stores/{store}/revoke                   revoke every terminal of a store
//   DELETE /v1/stores/{store}/terminals/{id}/session end the terminal's live session
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/config.hpp"
#include "posrelay/http/types.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/midtrans/api.hpp"
#include "posrelay/store/order_store.hpp"
#include "posrelay/store/terminal_activity.hpp"
#include "posrelay/store/terminal_revocations.hpp"

namespace posrelay::http {

using midtrans::normalise_gross_amount;
using midtrans::parse_midtrans_time;
using midtrans::valid_order_id;

// GET /v1/orders/{id}'s body: the stored record as a JSON object with its history (the
// store's bookkeeping fields left out; paid, source, updated_ms and status_code derived).
[[nodiscard]] std::string order_json(std::string_view order_id, const store::order_record& record);
// The same with the order's delivery timeline: "deliveries" (per recipient terminal and seq:
// written_ms, acked_ms, null when not recorded) and "deliveries_omitted" (marks past the bound);
// `timeline` nullopt: "deliveries" null (it could not be read).
[[nodiscard]] std::string order_json(std::string_view order_id, const store::order_record& record,
                                     const std::optional<store::delivery_timeline>& timeline);

// A terminal's presence is online while its session is open and within its lease (the
// session renews alive_until_ms with every write and idle heartbeat): a crashed node's
// terminals turn offline at most 3 heartbeats after its last renewal.
[[nodiscard]] bool presence_online(const store::presence_record& p, std::int64_t now_ms) noexcept;
// GET /v1/stores/{store}/terminals/{id}'s body.
[[nodiscard]] std::string presence_json(std::string_view store_id, const store::presence_record& p,
                                        std::int64_t now_ms);

// A path under /v1/stores/: {store}/terminals (terminal empty) or {store}/terminals/{id}.
struct terminals_path {
    std::string_view store, terminal;
    bool list = false;
};
// nullopt when the path is not one of those two (404); ids are checked by the caller.
[[nodiscard]] std::optional<terminals_path> parse_terminals_path(std::string_view target) noexcept;

// A path under /v1/stores/: {store}/ACTION (terminal empty) or {store}/terminals/{id}/ACTION
// (ACTION may be empty: the terminal itself). Segments are not validated here (valid_id is
// the caller's); nullopt for any other shape.
struct store_path {
    std::string_view store;
    std::string_view terminal;
    std::string_view action;
};
[[nodiscard]] std::optional<store_path> parse_store_path(std::string_view target) noexcept;

class operator_routes {
public:
    // `token` empty: every call answers 403 (the API is disabled).
    // `activity` (optional): presence and delivery timelines; without it the presence routes
    // answer 503 and orders show no deliveries.
    operator_routes(secret token, store::order_store& store,
                    store::terminal_activity* activity = nullptr);
    // A reload's new token; calls authorised from now on check it. Thread-safe.
    void set_token(secret token) { token_.set(std::move(token)); }

    [[nodiscard]] boost::asio::awaitable<response> get_order(request& req,
                                                             const request_context& ctx);
    [[nodiscard]] boost::asio::awaitable<response> register_order(request& req,
                                                                  const request_context& ctx);
    // GET /v1/stores/{store}/terminals/{id} and GET /v1/stores/{store}/terminals?cursor=&limit=
    [[nodiscard]] boost::asio::awaitable<response> get_terminals(request& req,
                                                                 const request_context& ctx);

    // Terminal control (revoke, disconnect) on `revocations`; a revocation is kept for `keep`
    // (proto-docs/redis-keys.md). Before serving. Without it those routes answer 404.
    void control_terminals(store::terminal_revocations& revocations, std::chrono::seconds keep,
                           metrics::registry& reg);
    // POST /v1/stores/{store}/terminals/{id}/revoke and POST /v1/stores/{store}/revoke.
    [[nodiscard]] boost::asio::awaitable<response> revoke(request& req, const request_context& ctx);
    // DELETE /v1/stores/{store}/terminals/{id}/session.
    [[nodiscard]] boost::asio::awaitable<response> disconnect(request& req,
                                                              const request_context& ctx);

private:
    // The order's delivery timeline; nullopt when it could not be read (or no activity).
    [[nodiscard]] boost::asio::awaitable<std::optional<store::delivery_timeline>> timeline_of(
        std::string_view order_id, const store::order_record& record);
    // nullopt when authorised; otherwise the 401/403 answer (logged).
    [[nodiscard]] std::optional<response> authorise(const request& req,
                                                    const request_context& ctx) const;

    secret_slot token_;
    store::order_store& store_;
    store::terminal_activity* activity_ = nullptr;
    store::terminal_revocations* revocations_ = nullptr;
    std::chrono::seconds revocation_keep_{0};
    metrics::counter* revoked_terminals_ = nullptr;  // posrelay_terminal_revocations_total
    metrics::counter* revoked_stores_ = nullptr;
    metrics::counter* disconnects_ = nullptr;  // posrelay_terminal_disconnect_requests_total
};

}  // namespace posrelay::http
