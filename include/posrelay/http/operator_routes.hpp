// The operator HTTP API, authenticated by a bearer token (POSRELAY_OPERATOR_TOKEN):
//   GET  /v1/orders/{order_id}   the stored order with its status history
//   POST /v1/orders              register an order created outside posrelay, to route it
#pragma once

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>

#include "posrelay/config.hpp"
#include "posrelay/http/types.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::http {

// Midtrans order_id rules: 1-50 of A-Z a-z 0-9 - _ ~ .
[[nodiscard]] bool valid_order_id(std::string_view id) noexcept;
// A positive whole number of rupiah: "10000" or "10000.00" (normalised to "10000");
// nullopt otherwise.
[[nodiscard]] std::optional<std::string> normalise_gross_amount(std::string_view s);
// "2026-11-24 10:15:00" in Midtrans's time zone (Asia/Jakarta, UTC+7) → Unix ms.
[[nodiscard]] std::optional<std::int64_t> parse_midtrans_time(std::string_view s) noexcept;

class operator_routes {
public:
    // `token` empty: every call answers 403 (the API is disabled).
    operator_routes(secret token, store::redis_store& store);

    [[nodiscard]] boost::asio::awaitable<response> get_order(request& req,
                                                             const request_context& ctx);
    [[nodiscard]] boost::asio::awaitable<response> register_order(request& req,
                                                                  const request_context& ctx);

private:
    // nullopt when authorised; otherwise the 401/403 answer (logged).
    [[nodiscard]] std::optional<response> authorise(const request& req,
                                                    const request_context& ctx) const;

    secret token_;
    store::redis_store& store_;
};

}  // namespace posrelay::http
