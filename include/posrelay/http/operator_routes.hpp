// The operator HTTP API, authenticated by a bearer token (POSRELAY_OPERATOR_TOKEN):
//   GET  /v1/orders/{order_id}   the stored order with its status history
//   POST /v1/orders              register an order created outside posrelay, to route it
#pragma once

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>

#include "posrelay/config.hpp"
#include "posrelay/http/types.hpp"
#include "posrelay/midtrans/api.hpp"
#include "posrelay/store/order_store.hpp"

namespace posrelay::http {

using midtrans::normalise_gross_amount;
using midtrans::parse_midtrans_time;
using midtrans::valid_order_id;

// GET /v1/orders/{id}'s body: the stored record as a JSON object with its history (the
// store's bookkeeping fields left out; paid, source, updated_ms and status_code derived).
[[nodiscard]] std::string order_json(std::string_view order_id, const store::order_record& record);

class operator_routes {
public:
    // `token` empty: every call answers 403 (the API is disabled).
    operator_routes(secret token, store::order_store& store);
    // A reload's new token; calls authorised from now on check it. Thread-safe.
    void set_token(secret token) { token_.set(std::move(token)); }

    [[nodiscard]] boost::asio::awaitable<response> get_order(request& req,
                                                             const request_context& ctx);
    [[nodiscard]] boost::asio::awaitable<response> register_order(request& req,
                                                                  const request_context& ctx);

private:
    // nullopt when authorised; otherwise the 401/403 answer (logged).
    [[nodiscard]] std::optional<response> authorise(const request& req,
                                                    const request_context& ctx) const;

    secret_slot token_;
    store::order_store& store_;
};

}  // namespace posrelay::http
