// terminal_streams on Redis: a terminal's hello ('open') and a new epoch of its stream
// ('rotate') are modes of the order script; the reads (counter, stream range) and the
// subscription renewal are plain commands. Keys: include/posrelay/store/keys.hpp; semantics:
// proto-docs/redis-keys.md.
#include <charconv>
#include <cstdlib>

#include "posrelay/store/keys.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::store {

namespace {

// {seq, epoch[, 'rotated' | 'kept']} → terminal_position; protocol_error when it is not that.
std::pair<boost::system::error_code, terminal_position> to_position(boost::system::error_code ec,
                                                                    const redis_reply& r) {
    terminal_position p;
    if (ec) return {ec, p};
    if (r.type != redis_reply::kind::array || r.elements.size() < 2 ||
        r.elements[0].type != redis_reply::kind::integer) {
        return {make_error_code(redis_errc::protocol_error), p};
    }
    p.seq = static_cast<std::uint64_t>(std::max<long long>(r.elements[0].integer, 0));
    p.epoch = r.elements[1].str;
    p.rotated = r.elements.size() > 2 && r.elements[2].str == "rotated";
    return {boost::system::error_code{}, std::move(p)};
}

// A stream entry as XRANGE returns it: [id "SEQ-EID", [epoch, event JSON]].
stream_entry to_entry(redis_reply& r) {
    stream_entry e;
    if (r.elements.empty()) return e;
    const std::string& id = r.elements[0].str;
    e.seq = std::strtoull(id.c_str(), nullptr, 10);
    if (const auto dash = id.find('-'); dash != std::string::npos) {
        const char* end = id.data() + id.size();
        const auto [p, ec] = std::from_chars(id.data() + dash + 1, end, e.eid);
        if (ec != std::errc{} || p != end) e.eid = 0;
    }
    if (r.elements.size() < 2 || r.elements[1].elements.empty()) return e;
    auto& fields = r.elements[1].elements;
    e.epoch = std::move(fields[0].str);
    if (fields.size() < 2) return e;
    e.event = std::move(fields[1].str);
    e.complete = true;
    return e;
}

}  // namespace

boost::asio::awaitable<std::pair<boost::system::error_code, terminal_position>>
redis_store::read_position(std::string store, std::string terminal) {
    auto [ec, r] = co_await local().exec(redis_command(
        "HMGET", keys::terminal_counter(sopts_.prefix, store, terminal), "seq", "epoch"));
    terminal_position p;
    if (ec) co_return std::pair{ec, p};
    if (r.type != redis_reply::kind::array || r.elements.size() < 2)
        co_return std::pair{make_error_code(redis_errc::protocol_error), p};
    p.seq = std::strtoull(r.elements[0].str.c_str(), nullptr, 10);
    p.epoch = std::move(r.elements[1].str);
    co_return std::pair{boost::system::error_code{}, std::move(p)};
}

boost::asio::awaitable<std::pair<boost::system::error_code, std::vector<stream_entry>>>
redis_store::read_range(std::string store, std::string terminal, std::uint64_t from,
                        std::uint64_t to, std::uint64_t count) {
    auto [ec, r] = co_await local().exec(
        redis_command("XRANGE", keys::terminal_stream(sopts_.prefix, store, terminal),
                      std::to_string(from), std::to_string(to), "COUNT", std::to_string(count)));
    std::vector<stream_entry> out;
    if (ec) co_return std::pair{ec, std::move(out)};
    if (r.type != redis_reply::kind::array)
        co_return std::pair{make_error_code(redis_errc::protocol_error), std::move(out)};
    out.reserve(r.elements.size());
    for (auto& entry : r.elements)
        out.push_back(to_entry(entry));
    co_return std::pair{boost::system::error_code{}, std::move(out)};
}

boost::asio::awaitable<boost::system::error_code> redis_store::renew_subscription(
    std::string store, std::string terminal) {
    auto [ec, r] =
        co_await local().exec(redis_command("ZADD", keys::store_subscribers(sopts_.prefix, store),
                                            std::to_string(unix_ms_now()), terminal));
    if (!ec && r.is_error()) ec = make_error_code(redis_errc::protocol_error);
    co_return ec;
}

boost::asio::awaitable<std::pair<boost::system::error_code, terminal_position>>
redis_store::open_terminal(std::string store, std::string terminal, bool subscribe) {
    const std::string counter = keys::terminal_counter(sopts_.prefix, store, terminal);
    const std::string stream = keys::terminal_stream(sopts_.prefix, store, terminal);
    const std::string subs = keys::store_subscribers(sopts_.prefix, store);
    const std::string now = std::to_string(unix_ms_now());
    const std::string ttl = std::to_string(sopts_.stream_ttl.count());
    const std::string_view k[] = {counter, stream, subs};
    const std::string_view a[] = {"open", subscribe ? "1" : "0", terminal, ttl};
    auto [ec, reply] = co_await eval_script(k, now, a);
    co_return to_position(ec, reply);
}

boost::asio::awaitable<std::pair<boost::system::error_code, terminal_position>>
redis_store::rotate_epoch(std::string store, std::string terminal, std::string expected,
                          std::string after_eid) {
    const std::string counter = keys::terminal_counter(sopts_.prefix, store, terminal);
    const std::string stream = keys::terminal_stream(sopts_.prefix, store, terminal);
    const std::string ttl = std::to_string(sopts_.stream_ttl.count());
    const std::string_view k[] = {counter, stream};
    const std::string now = std::to_string(unix_ms_now());
    const std::string_view a[] = {"rotate", expected, after_eid, ttl};
    auto [ec, reply] = co_await eval_script(k, now, a);
    co_return to_position(ec, reply);
}

}  // namespace posrelay::store
