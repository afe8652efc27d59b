// The charge flow of terminals (proto-docs/terminal-protocol.md §13): charge, cancel, expire
// and status requests, answered from Redis and Midtrans; and the QR image an authenticated
// terminal may download instead of hotlinking Midtrans's URL.
//
// A charge reserves its order_id in Redis first (routed to the terminal and its store), then
// calls Midtrans /v2/charge. When Midtrans did not create the transaction the reservation is
// removed (nothing half-created is left); when the answer is lost, posrelay asks Midtrans
// for the order's status instead of charging again.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "posrelay/config.hpp"
#include "posrelay/fanout/protocol.hpp"
#include "posrelay/ingest/commit_sink.hpp"
#include "posrelay/metrics/registry.hpp"
#include "posrelay/midtrans/api.hpp"
#include "posrelay/midtrans/client.hpp"
#include "posrelay/store/order_store.hpp"

namespace posrelay::orders {

struct service_options {
    std::string public_url;  // posrelay's base URL: qr_image_url is built from it ("" = none)
    std::chrono::milliseconds status_refresh_after{10'000};
    std::size_t qr_cache_bytes = 16 * 1024 * 1024;
    std::size_t max_qr_bytes = 256 * 1024;  // a bigger image is refused

    [[nodiscard]] static service_options from(const config& c);
};

// A bounded LRU cache of QR images by order_id. Thread-safe.
class qr_cache {
public:
    explicit qr_cache(std::size_t max_bytes) : max_bytes_(max_bytes) {}
    [[nodiscard]] std::shared_ptr<const std::string> get(const std::string& order_id);
    void put(const std::string& order_id, std::shared_ptr<const std::string> png);
    [[nodiscard]] std::size_t bytes() const;

private:
    using entry = std::pair<std::string, std::shared_ptr<const std::string>>;
    mutable std::mutex mutex_;
    std::list<entry> lru_;  // most recent first
    std::unordered_map<std::string, std::list<entry>::iterator> index_;
    std::size_t bytes_ = 0;
    std::size_t max_bytes_;
};

class order_service {
public:
    order_service(store::order_store& store, midtrans::api_calls& api, service_options o,
                  metrics::registry& reg);

    // Answers one request of an authenticated terminal: a `result` frame or a non-fatal
    // `error` frame, both carrying the request's id. Runs on an io thread; never throws.
    [[nodiscard]] boost::asio::awaitable<std::string> handle(std::string terminal_id,
                                                             std::string store_id,
                                                             fanout::request_frame req);

    struct image {
        unsigned status = 200;
        std::string content_type;  // image/png, or application/json for errors
        std::shared_ptr<const std::string> body;
    };
    // The QR image of an order of `store_id`, fetched from Midtrans's generate-qr-code URL
    // once and cached.
    [[nodiscard]] boost::asio::awaitable<image> qr_png(std::string order_id, std::string store_id);

private:
    struct request_ctx;
    // The request's order, if it is one of the terminal's store; else `refused` is the
    // error frame to answer.
    struct found_order {
        std::string id;
        store::order_fields order;
        std::string refused;
    };
    boost::asio::awaitable<found_order> find_order(request_ctx& c);
    boost::asio::awaitable<std::string> charge(request_ctx& c);
    boost::asio::awaitable<std::string> change(request_ctx& c, bool cancel);
    boost::asio::awaitable<std::string> status(request_ctx& c);
    // Asks Midtrans for the order's status and commits it; the answer, or nullopt.
    boost::asio::awaitable<std::optional<midtrans::api_answer>> refresh(std::string order_id,
                                                                        ingest::update_source src);
    boost::asio::awaitable<std::string> charged(request_ctx& c,
                                                const store::order_registration& reg,
                                                const midtrans::api_answer& a);
    boost::asio::awaitable<void> keep_charge(store::order_registration reg, store::order_fields f,
                                             midtrans::api_answer a);
    void count(std::string_view op, std::string_view outcome);

    store::order_store& store_;
    midtrans::api_calls& api_;
    service_options opts_;
    qr_cache qr_;
    metrics::registry& reg_;
    std::mutex counters_mutex_;
    std::unordered_map<std::string, metrics::counter*> counters_;
    metrics::counter& charges_restored_;
};

}  // namespace posrelay::orders
