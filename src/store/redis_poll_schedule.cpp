// The poll schedule on Redis: the poll script's modes, and the gauges' reads.
#include "posrelay/store/redis_poll_schedule.hpp"

#include "posrelay/poll/poll_script.hpp"
#include "posrelay/store/keys.hpp"

namespace posrelay::store {

namespace {

using error_code = boost::system::error_code;

struct set_keys {
    std::string set, leases;
};
set_keys keys_of(std::string_view prefix, poll_set set, unsigned bucket) {
    if (set == poll_set::confirm)
        return {keys::poll_confirm(prefix, bucket), keys::poll_confirm_leases(prefix, bucket)};
    return {keys::poll_due(prefix, bucket), keys::poll_leases(prefix, bucket)};
}
set_keys legacy_keys_of(std::string_view prefix, poll_set set) {
    if (set == poll_set::confirm)
        return {keys::legacy_poll_confirm(prefix), keys::legacy_poll_confirm_leases(prefix)};
    return {keys::legacy_poll_due(prefix), keys::legacy_poll_leases(prefix)};
}

std::optional<std::int64_t> earliest(std::optional<std::int64_t> a, std::optional<std::int64_t> b) {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

// The claim reply {id, previous, ..., next_due_ms | ''} as a batch.
std::pair<error_code, claim_batch> to_batch(error_code ec, redis_reply& r) {
    claim_batch b;
    if (ec) return {ec, std::move(b)};
    if (r.type != redis_reply::kind::array || r.elements.empty())
        return {make_error_code(redis_errc::protocol_error), std::move(b)};
    const std::size_t pairs_end = r.elements.size() - 1;  // then the next due time
    for (std::size_t i = 0; i + 1 < pairs_end; i += 2)
        b.entries.push_back({std::move(r.elements[i].str), std::move(r.elements[i + 1].str)});
    if (!r.elements.back().str.empty()) b.next_due_ms = to_int64(r.elements.back().str);
    return {error_code{}, std::move(b)};
}

}  // namespace

redis_poll_schedule::redis_poll_schedule(redis_store& store, metrics::registry& reg)
    : store_(store),
      script_(std::make_shared<const lua_script>("poll", poll::detail::poll_script, reg)) {
    store_.add_script(script_);
}

boost::asio::awaitable<std::pair<error_code, redis_reply>> redis_poll_schedule::run(
    std::span<const std::string_view> keys, std::span<const std::string_view> args) {
    const std::string now = std::to_string(unix_ms_now());
    const script_header header{store_.options().prefix, now};
    co_return co_await script_->exec(store_.local(), keys, header, redis_args(args));
}

// The buckets one after the other, from a cursor that moves on each call (no bucket starves),
// until `max` are claimed; each bucket is one script call in its own slot.
boost::asio::awaitable<std::pair<error_code, claim_batch>> redis_poll_schedule::claim(
    poll_set set, std::chrono::milliseconds lease, unsigned max, std::string node) {
    claim_batch out;
    error_code first_ec;
    const unsigned start = cursor_++ % keys::poll_buckets;
    for (unsigned i = 0; i < keys::poll_buckets && out.entries.size() < max; ++i) {
        const auto k = keys_of(store_.options().prefix, set, (start + i) % keys::poll_buckets);
        const std::string lease_ms = std::to_string(lease.count());
        const std::string count = std::to_string(max - out.entries.size());
        const std::string_view kv[] = {k.set, k.leases};
        const std::string_view a[] = {"claim", lease_ms, count, node};
        auto [ec, r] = co_await run(kv, a);
        auto [bec, b] = to_batch(ec, r);
        if (bec) {
            if (!first_ec) first_ec = bec;
            continue;  // a bucket whose shard is down: the others still run
        }
        for (auto& e : b.entries)
            out.entries.push_back(std::move(e));
        out.next_due_ms = earliest(out.next_due_ms, b.next_due_ms);
    }
    if (first_ec && out.entries.empty() && !out.next_due_ms) co_return std::pair{first_ec, out};
    co_return std::pair{error_code{}, std::move(out)};
}

boost::asio::awaitable<error_code> redis_poll_schedule::done(
    poll_set set, std::string order_id, std::optional<std::int64_t> next_due_ms) {
    const auto k = keys_of(store_.options().prefix, set, keys::poll_bucket(order_id));
    const std::string next = next_due_ms ? std::to_string(*next_due_ms) : std::string();
    const std::string_view kv[] = {k.set, k.leases};
    const std::string_view a[] = {"done", order_id, next};
    auto [ec, r] = co_await run(kv, a);
    if (!ec && r.is_error()) ec = make_error_code(redis_errc::protocol_error);
    co_return ec;
}

boost::asio::awaitable<std::pair<error_code, bool>> redis_poll_schedule::enrol(poll_set set,
                                                                               std::string order_id,
                                                                               std::int64_t due_ms,
                                                                               std::string node) {
    const auto k = keys_of(store_.options().prefix, set, keys::poll_bucket(order_id));
    auto [ec, r] = co_await store_.local().exec(
        redis_command("ZADD", k.set, "NX", std::to_string(due_ms), order_id));
    if (!ec && r.is_error()) ec = make_error_code(redis_errc::protocol_error);
    if (ec) co_return std::pair{ec, false};
    const bool added = r.type == redis_reply::kind::integer && r.integer == 1;
    if (added && !node.empty()) {
        auto [hec, h] =
            co_await store_.local().exec(redis_command("HSET", k.leases, order_id, node));
        if (!hec && h.is_error()) hec = make_error_code(redis_errc::protocol_error);
        if (hec) co_return std::pair{hec, true};
    }
    co_return std::pair{error_code{}, added};
}

boost::asio::awaitable<std::pair<error_code, std::int64_t>> redis_poll_schedule::take(
    std::int64_t interval_ms, std::int64_t tau_ms) {
    const auto& prefix = store_.options().prefix;
    const std::string rate = keys::poll_rate(prefix), pause_key = keys::poll_pause(prefix);
    const std::string interval = std::to_string(interval_ms), tau = std::to_string(tau_ms);
    const std::string_view kv[] = {rate, pause_key};
    const std::string_view a[] = {"take", interval, tau};
    auto [ec, r] = co_await run(kv, a);
    if (!ec && r.type != redis_reply::kind::integer)
        ec = make_error_code(redis_errc::protocol_error);
    co_return std::pair{ec, ec ? std::int64_t{0} : static_cast<std::int64_t>(r.integer)};
}

boost::asio::awaitable<error_code> redis_poll_schedule::pause(std::chrono::milliseconds ms) {
    const std::string pause_key = keys::poll_pause(store_.options().prefix);
    const std::string n = std::to_string(ms.count());
    const std::string_view kv[] = {pause_key};
    const std::string_view a[] = {"pause", n};
    auto [ec, r] = co_await run(kv, a);
    if (!ec && r.is_error()) ec = make_error_code(redis_errc::protocol_error);
    co_return ec;
}

// One set's size and earliest due time, summed over its buckets.
boost::asio::awaitable<error_code> redis_poll_schedule::count(poll_set set, std::int64_t& size,
                                                              std::optional<std::int64_t>* oldest) {
    auto& redis = store_.local();
    for (unsigned b = 0; b < keys::poll_buckets; ++b) {
        const auto k = keys_of(store_.options().prefix, set, b);
        auto [ec, n] = co_await redis.exec(redis_command("ZCARD", k.set));
        if (ec) co_return ec;
        if (n.type == redis_reply::kind::integer) size += n.integer;
        if (oldest == nullptr) continue;
        auto [ec2, first] =
            co_await redis.exec(redis_command("ZRANGE", k.set, "0", "0", "WITHSCORES"));
        if (ec2) co_return ec2;
        if (first.elements.size() == 2)
            *oldest = earliest(*oldest, to_int64(first.elements[1].str));
    }
    co_return error_code{};
}

boost::asio::awaitable<std::pair<error_code, schedule_stats>> redis_poll_schedule::stats() {
    schedule_stats s;
    // Entries a node of the previous key schema still writes are moved first.
    (void)co_await migrate(poll_set::due);
    (void)co_await migrate(poll_set::confirm);
    if (auto ec = co_await count(poll_set::due, s.due, &s.oldest_due_ms); ec)
        co_return std::pair{ec, s};
    if (auto ec = co_await count(poll_set::confirm, s.confirm, nullptr); ec)
        co_return std::pair{ec, s};
    co_return std::pair{error_code{}, s};
}

// Moves up to 256 entries of the single set of key schema v2 (keys::legacy_poll_due ...) into
// their buckets, with their lease holder: ZADD NX into the bucket, then ZREM from the old set,
// so a crash between the two leaves the entry in both and the next run finishes the move
// (idempotent). Returns how many were moved.
boost::asio::awaitable<std::pair<error_code, std::size_t>> redis_poll_schedule::migrate(
    poll_set set) {
    const auto& prefix = store_.options().prefix;
    const auto old = legacy_keys_of(prefix, set);
    auto& redis = store_.local();
    auto [ec, r] = co_await redis.exec(redis_command("ZRANGE", old.set, "0", "255", "WITHSCORES"));
    if (ec || r.type != redis_reply::kind::array) co_return std::pair{ec, std::size_t{0}};
    std::size_t moved = 0;
    for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
        const std::string& id = r.elements[i].str;
        const auto k = keys_of(prefix, set, keys::poll_bucket(id));
        auto [hec, holder] = co_await redis.exec(redis_command("HGET", old.leases, id));
        if (hec) co_return std::pair{hec, moved};
        auto [zec, z] =
            co_await redis.exec(redis_command("ZADD", k.set, "NX", r.elements[i + 1].str, id));
        if (zec || z.is_error()) co_return std::pair{zec, moved};
        if (holder.type == redis_reply::kind::string && !holder.str.empty())
            (void)co_await redis.exec(redis_command("HSETNX", k.leases, id, holder.str));
        (void)co_await redis.exec(redis_command("ZREM", old.set, id));
        (void)co_await redis.exec(redis_command("HDEL", old.leases, id));
        ++moved;
    }
    co_return std::pair{error_code{}, moved};
}

}  // namespace posrelay::store
