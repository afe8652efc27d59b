// The terminal side of the order script: a terminal's hello ('open') and a new epoch of its
// stream ('rotate'). Keys: include/posrelay/store/keys.hpp; semantics: proto-docs/redis-keys.md.
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

}  // namespace

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
