// Routing an order to its store's slot (key schema version 4, proto-docs/redis-keys.md, "The
// route"): the route P{o:ID}:route, this node's cache of it, and the move of a record written
// before its order was routed (P{o:ID}) into the store's slot.
#include <chrono>

#include "posrelay/log.hpp"
#include "posrelay/store/keys.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::store {

namespace {

using ec_t = boost::system::error_code;

}  // namespace

void redis_store::step(std::string_view name) const {
    if (sopts_.step_hook) sopts_.step_hook(name);
}

namespace {

bool is_outcome(const redis_reply& r, std::string_view outcome) {
    return r.type == redis_reply::kind::array && !r.elements.empty() &&
           r.elements[0].str == outcome;
}

}  // namespace

std::chrono::seconds redis_store::route_ttl() const noexcept {
    // Longer than the record's by more than a cache entry's age (one hour): a commit renews
    // the record's TTL at most that long after the route's was renewed by reading it.
    return key_ttl() + std::chrono::hours(24);
}

void redis_store::count_published(const redis_reply& reply) noexcept {
    if (reply.type != redis_reply::kind::array || reply.elements.size() < 3) return;
    const redis_reply& n = reply.elements[2];
    if (n.type == redis_reply::kind::integer && n.integer > 0)
        published_.inc(static_cast<std::uint64_t>(n.integer));
}

boost::asio::awaitable<std::pair<ec_t, std::string>> redis_store::find_route(
    std::string_view order_id, bool cached) {
    const auto now = route_cache::clock::now();
    if (cached) {
        if (auto store = routes_.get(order_id, now)) {
            route_hits_.inc();
            co_return std::pair{ec_t{}, std::move(*store)};
        }
        route_misses_.inc();
    }
    const std::string route = keys::order_route(sopts_.prefix, order_id);
    const std::string ttl = std::to_string(route_ttl().count());
    auto [ec, r] = co_await local().exec(redis_command("GETEX", route, "EX", ttl));
    if (!ec && r.is_error()) ec = make_error_code(redis_errc::protocol_error);
    if (ec || r.type != redis_reply::kind::string) co_return std::pair{ec, std::string()};
    routes_.put(order_id, r.str, now);
    co_return std::pair{ec_t{}, std::move(r.str)};
}

boost::asio::awaitable<std::pair<ec_t, std::string>> redis_store::claim_route(std::string order_id,
                                                                              std::string wanted) {
    auto [ec, store] = co_await find_route(order_id, false);
    if (ec) co_return std::pair{ec, std::string()};
    if (store.empty()) {
        // A record of key schema version 3 keeps its own route: it goes to its store.
        const std::string old = keys::unrouted_order(sopts_.prefix, order_id);
        auto [hec, h] = co_await local().exec(redis_command("HGET", old, "store_id"));
        if (hec) co_return std::pair{hec, std::string()};
        store = h.type == redis_reply::kind::string && !h.str.empty() ? h.str : wanted;
        const std::string route = keys::order_route(sopts_.prefix, order_id);
        auto [sec, s] = co_await local().exec(redis_command("SET", route, store, "NX", "GET", "EX",
                                                            std::to_string(route_ttl().count())));
        if (!sec && s.is_error()) sec = make_error_code(redis_errc::protocol_error);
        if (sec) co_return std::pair{sec, std::string()};
        if (s.type == redis_reply::kind::string) store = s.str;  // routed meanwhile
    }
    routes_.put(order_id, store, route_cache::clock::now());
    if (auto aec = co_await adopt_unrouted(order_id, store))
        co_return std::pair{aec, std::string()};
    co_return std::pair{ec_t{}, std::move(store)};
}

boost::asio::awaitable<ec_t> redis_store::adopt_unrouted(std::string_view order_id,
                                                         std::string_view store) {
    const std::string old = keys::unrouted_order(sopts_.prefix, order_id);
    auto [ec, fields] = co_await local().exec(redis_command("HGETALL", old));
    if (!ec && fields.type != redis_reply::kind::array)
        ec = make_error_code(redis_errc::protocol_error);
    if (ec || fields.elements.empty()) co_return ec;
    step("adopt_read");
    const std::string now = std::to_string(unix_ms_now());
    const std::string ttl = std::to_string(key_ttl().count());
    const std::string hmax = std::to_string(sopts_.history_max);
    const std::string maxlen = std::to_string(sopts_.stream_maxlen);
    const std::string sttl = std::to_string(sopts_.stream_ttl.count());
    std::vector<std::string_view> args{"adopt", ttl, hmax, maxlen, sttl, order_id};
    for (const auto& f : fields.elements)
        args.push_back(f.str);
    auto [aec, r] = co_await run_on(store, order_id, now, args);
    if (!aec && r.is_error()) {
        log::line(log::level::error, "adopt refused").str("reply", r.str);
        aec = make_error_code(redis_errc::protocol_error);
    }
    if (aec) co_return aec;
    count_published(r);
    if (is_outcome(r, "adopted")) adoptions_.inc();
    // Whatever is written to P{o:ID} from now on is re-applied by its writer (run_update).
    auto [dec, d] = co_await local().exec(redis_command("DEL", old));
    co_return dec;
}

boost::asio::awaitable<std::pair<ec_t, redis_reply>> redis_store::run_on(std::string_view store,
                                                                         std::string_view order_id,
                                                                         std::string_view now_ms,
                                                                         redis_args args) {
    if (store.empty()) {
        const std::string key = keys::unrouted_order(sopts_.prefix, order_id);
        const std::string_view k[] = {key};
        co_return co_await eval_script(k, now_ms, args);
    }
    const std::string key = keys::store_order(sopts_.prefix, store, order_id);
    const std::string subs = keys::store_subscribers(sopts_.prefix, store);
    const std::string_view k[] = {key, subs};
    co_return co_await eval_script(k, now_ms, args);
}

boost::asio::awaitable<std::pair<ec_t, redis_reply>> redis_store::run_update(
    std::string_view order_id, std::string_view now_ms, redis_args args) {
    auto [ec, store] = co_await find_route(order_id);
    if (ec) co_return std::pair{ec, redis_reply{}};
    if (!store.empty()) co_return co_await run_on(store, order_id, now_ms, args);
    step("route_missing");
    auto first = co_await run_on("", order_id, now_ms, args);
    if (first.first || first.second.is_error()) co_return first;
    step("unrouted_written");
    if (is_outcome(first.second, "unmigrated")) {
        // Key schema version 3: the record names its store; move it there and commit there.
        auto [cec, routed] =
            co_await claim_route(std::string(order_id), first.second.elements[1].str);
        if (cec) co_return std::pair{cec, redis_reply{}};
        co_return co_await run_on(routed, order_id, now_ms, args);
    }
    // Routed meanwhile? Then this write may have missed the move: apply it there too.
    auto [rec, late] = co_await find_route(order_id, false);
    if (rec || late.empty()) co_return std::pair{rec, std::move(first.second)};
    if (auto aec = co_await adopt_unrouted(order_id, late)) co_return std::pair{aec, redis_reply{}};
    auto second = co_await run_on(late, order_id, now_ms, args);
    if (second.first || second.second.is_error()) co_return second;
    // Already there (moved with the record): the first answer tells what this update was.
    if (is_outcome(second.second, "duplicate") || is_outcome(second.second, "superseded"))
        co_return first;
    co_return second;
}

boost::asio::awaitable<std::pair<ec_t, std::string>> redis_store::locate_order(
    std::string order_id) {
    auto [ec, store] = co_await find_route(order_id);
    if (ec) co_return std::pair{ec, std::string()};
    co_return std::pair{ec_t{}, store.empty() ? keys::unrouted_order(sopts_.prefix, order_id)
                                              : keys::store_order(sopts_.prefix, store, order_id)};
}

boost::asio::awaitable<ec_t> redis_store::increment_order_field(std::string order_id,
                                                                std::string field) {
    auto [ec, key] = co_await locate_order(std::move(order_id));
    if (ec) co_return ec;
    auto [iec, r] = co_await local().exec(redis_command("HINCRBY", key, field, "1"));
    if (!iec && r.is_error()) iec = make_error_code(redis_errc::protocol_error);
    co_return iec;
}

boost::asio::awaitable<std::pair<ec_t, redis_reply>> redis_store::read_record(
    std::string_view order_id) {
    auto [ec, store] = co_await find_route(order_id);
    if (ec) co_return std::pair{ec, redis_reply{}};
    const std::string unrouted = keys::unrouted_order(sopts_.prefix, order_id);
    if (!store.empty()) {
        const std::string key = keys::store_order(sopts_.prefix, store, order_id);
        auto r = co_await local().exec(redis_command("HGETALL", key));
        if (r.first || r.second.type != redis_reply::kind::array || !r.second.elements.empty())
            co_return r;
    }
    co_return co_await local().exec(redis_command("HGETALL", unrouted));
}

}  // namespace posrelay::store
