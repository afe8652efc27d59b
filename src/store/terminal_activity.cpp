// terminal_activity on Redis: one call of the activity script (src/store/activity_script.lua)
// per store batch or presence read; timelines read by HGETALL. Keys: keys.hpp; semantics:
// proto-docs/redis-keys.md, "Presence and delivery timelines".
#include "posrelay/store/terminal_activity.hpp"

#include <algorithm>
#include <map>

#include "posrelay/store/keys.hpp"
#include "posrelay/store/redis_store.hpp"

namespace posrelay::store {

namespace {

std::uint64_t to_u64(std::string_view s) noexcept {
    const auto v = to_int64(s);
    return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}

// One presence update's 13 script arguments (activity_script.lua, 'mark').
void append_presence_args(std::vector<std::string>& a, const presence_update& p) {
    const auto opt = [](const std::optional<std::uint64_t>& v) {
        return v ? std::to_string(*v) : std::string();
    };
    if (!p.open) {  // the session's own fields are written by its opening only: not sent
        a.insert(a.end(),
                 {p.terminal, p.session, "0", "", "", "", "", "0", "0", opt(p.sent_seq),
                  opt(p.acked_seq), std::to_string(p.alive_until_ms), std::to_string(p.closed_ms)});
        return;
    }
    a.insert(a.end(),
             {p.terminal, p.session, "1", p.node, p.transport, p.remote, p.epoch,
              p.subscribe_store ? "1" : "0", std::to_string(p.connected_ms), opt(p.sent_seq),
              opt(p.acked_seq), std::to_string(p.alive_until_ms), std::to_string(p.closed_ms)});
}

// {presence HGETALL, counter seq, counter epoch} → presence_record.
presence_record to_presence(std::string terminal, redis_reply& r) {
    presence_record p;
    p.terminal = std::move(terminal);
    if (r.type != redis_reply::kind::array || r.elements.size() < 3) return p;
    auto& f = r.elements[0].elements;
    p.known = !f.empty();
    for (std::size_t i = 0; i + 1 < f.size(); i += 2) {
        const std::string& name = f[i].str;
        std::string& v = f[i + 1].str;
        if (name == "session")
            p.session = std::move(v);
        else if (name == "node")
            p.node = std::move(v);
        else if (name == "transport")
            p.transport = std::move(v);
        else if (name == "remote")
            p.remote = std::move(v);
        else if (name == "epoch")
            p.epoch = std::move(v);
        else if (name == "subscribe")
            p.subscribe_store = v == "1";
        else if (name == "connected_ms")
            p.connected_ms = to_int64(v);
        else if (name == "alive_until_ms")
            p.alive_until_ms = to_int64(v);
        else if (name == "closed_ms")
            p.closed_ms = to_int64(v);
        else if (name == "sent_seq")
            p.sent_seq = to_u64(v);
        else if (name == "acked_seq")
            p.acked_seq = to_u64(v);
    }
    p.last_seq = to_u64(r.elements[1].str);
    p.counter_epoch = std::move(r.elements[2].str);
    return p;
}

}  // namespace

delivery_timeline parse_timeline(const order_record& fields) {
    delivery_timeline t;
    for (const auto& [name, value] : fields) {
        if (name == "omitted") {
            t.omitted = to_u64(value);
            continue;
        }
        const auto bar = name.find('|');
        const auto vbar = value.find('|');
        if (bar == std::string::npos || vbar == std::string::npos) continue;
        timeline_entry e;
        e.terminal = name.substr(0, bar);
        e.seq = to_u64(std::string_view(name).substr(bar + 1));
        e.written_ms = to_int64(std::string_view(value).substr(0, vbar));
        e.acked_ms = to_int64(std::string_view(value).substr(vbar + 1));
        if (e.seq == 0) continue;
        t.entries.push_back(std::move(e));
    }
    std::sort(t.entries.begin(), t.entries.end(), [](const auto& a, const auto& b) {
        return std::tie(a.terminal, a.seq) < std::tie(b.terminal, b.seq);
    });
    return t;
}

boost::asio::awaitable<boost::system::error_code> redis_store::write_activity(
    std::string store, activity_batch batch) {
    const std::string& p = sopts_.prefix;
    std::vector<std::string> keys{keys::store_terminals(p, store)};
    std::vector<std::string> args{std::to_string(sopts_.stream_ttl.count()),
                                  std::to_string(timeline_max_entries),
                                  std::to_string(batch.presence.size())};
    for (const auto& u : batch.presence) {
        keys.push_back(keys::terminal_presence(p, store, u.terminal));
        append_presence_args(args, u);
    }
    // The timeline marks by order, each order's in the order they came.
    std::map<std::string_view, std::vector<const timeline_mark*>> by_order;
    for (const auto& m : batch.timeline)
        by_order[m.order_id].push_back(&m);
    args.push_back(std::to_string(by_order.size()));
    for (const auto& [order, marks] : by_order) {
        keys.push_back(keys::store_order(p, store, order));
        keys.push_back(keys::order_timeline(p, store, order));
        args.push_back(std::to_string(marks.size()));
        for (const auto* m : marks) {
            args.insert(args.end(), {m->terminal, std::to_string(m->seq),
                                     std::to_string(m->written_ms), std::to_string(m->acked_ms)});
        }
    }
    const std::vector<std::string_view> k(keys.begin(), keys.end());
    std::vector<std::string_view> a{"mark"};
    a.insert(a.end(), args.begin(), args.end());
    const std::string now = std::to_string(unix_ms_now());
    auto [ec, r] = co_await activity_script_.exec(local(), k, script_header{p, now}, a);
    if (!ec && r.is_error()) ec = make_error_code(redis_errc::protocol_error);
    co_return ec;
}

boost::asio::awaitable<std::pair<boost::system::error_code, std::vector<presence_record>>>
redis_store::read_presences(const std::string& store, std::vector<std::string> terminals) {
    const std::string& p = sopts_.prefix;
    std::vector<std::string> keys{keys::store_terminals(p, store)};
    for (const auto& t : terminals) {
        keys.push_back(keys::terminal_presence(p, store, t));
        keys.push_back(keys::terminal_counter(p, store, t));
    }
    const std::vector<std::string_view> k(keys.begin(), keys.end());
    std::vector<std::string_view> a{"read"};
    a.insert(a.end(), terminals.begin(), terminals.end());
    const std::string now = std::to_string(unix_ms_now());
    auto [ec, r] = co_await activity_script_.exec(local(), k, script_header{p, now}, a);
    std::vector<presence_record> out;
    if (!ec && (r.type != redis_reply::kind::array || r.elements.size() != terminals.size()))
        ec = make_error_code(redis_errc::protocol_error);
    if (ec) co_return std::pair{ec, std::move(out)};
    for (std::size_t i = 0; i < terminals.size(); ++i)
        out.push_back(to_presence(std::move(terminals[i]), r.elements[i]));
    co_return std::pair{ec, std::move(out)};
}

boost::asio::awaitable<std::pair<boost::system::error_code, presence_record>>
redis_store::read_presence(std::string store, std::string terminal) {
    std::vector<std::string> one{terminal};  // not a braced list in co_await (g++ 12)
    auto [ec, v] = co_await read_presences(store, std::move(one));
    presence_record r;
    r.terminal = std::move(terminal);
    if (!ec && !v.empty()) r = std::move(v[0]);
    co_return std::pair{ec, std::move(r)};
}

boost::asio::awaitable<std::pair<boost::system::error_code, presence_page>>
redis_store::list_presence(std::string store, std::string cursor, std::size_t limit) {
    limit = std::clamp<std::size_t>(limit, 1, presence_page_max);
    // One more than asked: whether there is a next page. The arguments are made before the
    // co_await (g++ 12 frees a conditional's temporary inside a co_await expression twice).
    const auto cmd = redis_command("ZRANGE", keys::store_terminals(sopts_.prefix, store),
                                   cursor.empty() ? std::string("-") : "(" + cursor, "+", "BYLEX",
                                   "LIMIT", "0", std::to_string(limit + 1));
    auto [ec, r] = co_await local().exec(cmd);
    presence_page page;
    if (!ec && r.type != redis_reply::kind::array) ec = make_error_code(redis_errc::protocol_error);
    if (ec) co_return std::pair{ec, std::move(page)};
    std::vector<std::string> ids;
    for (auto& e : r.elements)
        ids.push_back(std::move(e.str));
    if (ids.size() > limit) {
        ids.resize(limit);
        page.next = ids.back();
    }
    if (ids.empty()) co_return std::pair{ec, std::move(page)};
    auto [rec, recs] = co_await read_presences(store, std::move(ids));
    if (rec) co_return std::pair{rec, std::move(page)};
    for (auto& p : recs)
        if (p.known) page.terminals.push_back(std::move(p));
    co_return std::pair{rec, std::move(page)};
}

boost::asio::awaitable<std::pair<boost::system::error_code, delivery_timeline>>
redis_store::read_timeline(std::string store, std::string order_id) {
    auto [ec, r] = co_await local().exec(
        redis_command("HGETALL", keys::order_timeline(sopts_.prefix, store, order_id)));
    if (!ec && r.type != redis_reply::kind::array) ec = make_error_code(redis_errc::protocol_error);
    if (ec) co_return std::pair{ec, delivery_timeline{}};
    order_record fields;
    for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2)
        fields.emplace_back(std::move(r.elements[i].str), std::move(r.elements[i + 1].str));
    co_return std::pair{ec, parse_timeline(fields)};
}

}  // namespace posrelay::store
