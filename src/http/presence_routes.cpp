// Operator API, terminal presence: GET /v1/stores/{store}/terminals/{id} (one terminal, from
// whichever node serves it: presence lives in Redis) and GET /v1/stores/{store}/terminals
// (a page of the store's terminals). Rendering and the online decision are pure functions.
#include <boost/beast/http/field.hpp>

#include <charconv>

#include "posrelay/fanout/protocol.hpp"
#include "posrelay/http/operator_routes.hpp"
#include "posrelay/log.hpp"

namespace posrelay::http {

namespace {

void append_number(std::string& json, std::string_view name, std::uint64_t v) {
    json += ",\"";
    json += name;
    json += "\":";
    json += std::to_string(v);
}
void append_ms(std::string& json, std::string_view name, std::int64_t ms) {
    json += ",\"";
    json += name;
    json += "\":";
    json += ms > 0 ? std::to_string(ms) : std::string("null");
}
void append_text(std::string& json, std::string_view name, std::string_view v) {
    json += ',';
    log::append_json_member(json, name, v);
}

// The value of `name` in the target's query ("" when absent); ids and numbers only, so no
// percent-decoding is needed (anything else fails validation).
std::string_view query_param(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return {};
}

response presence_unavailable() {
    response res =
        json_error(503, "store_unavailable", "the presence store is unavailable, retry later");
    res.set(beast_http::field::retry_after, "5");
    return res;
}

}  // namespace

bool presence_online(const store::presence_record& p, std::int64_t now_ms) noexcept {
    return p.known && !p.session.empty() && p.closed_ms == 0 && now_ms <= p.alive_until_ms;
}

std::string presence_json(std::string_view store_id, const store::presence_record& p,
                          std::int64_t now_ms) {
    std::string json = "{";
    log::append_json_member(json, "store_id", store_id);
    append_text(json, "terminal_id", p.terminal);
    json += presence_online(p, now_ms) ? R"(,"online":true)" : R"(,"online":false)";
    json += p.known ? R"(,"known":true)" : R"(,"known":false)";
    append_number(json, "last_seq", p.last_seq);
    if (!p.known) {
        json += R"(,"last_sent_seq":null,"last_acked_seq":null,"events_waiting":null})";
        return json;
    }
    append_text(json, "session_id", p.session);
    append_text(json, "node", p.node);
    append_text(json, "transport", p.transport);
    append_text(json, "remote", p.remote);
    append_ms(json, "connected_ms", p.connected_ms);
    append_ms(json, "disconnected_ms", p.closed_ms);
    append_ms(json, "alive_until_ms", p.alive_until_ms);
    json += p.subscribe_store ? R"(,"subscribe_store":true)" : R"(,"subscribe_store":false)";
    append_text(json, "epoch", p.epoch);
    append_number(json, "last_sent_seq", p.sent_seq);
    append_number(json, "last_acked_seq", p.acked_seq);
    // Waiting: the counter's newest seq past the acknowledged one, in the same epoch (in
    // another one the numbers do not compare).
    if (p.epoch == p.counter_epoch && p.last_seq >= p.acked_seq)
        append_number(json, "events_waiting", p.last_seq - p.acked_seq);
    else
        json += R"(,"events_waiting":null)";
    json += '}';
    return json;
}

std::optional<terminals_path> parse_terminals_path(std::string_view target) noexcept {
    target = target.substr(0, target.find('?'));
    constexpr std::string_view root = "/v1/stores/";
    if (!target.starts_with(root)) return std::nullopt;
    target.remove_prefix(root.size());
    terminals_path p;
    const auto slash = target.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    p.store = target.substr(0, slash);
    target.remove_prefix(slash + 1);
    constexpr std::string_view terminals = "terminals";
    if (!target.starts_with(terminals)) return std::nullopt;
    target.remove_prefix(terminals.size());
    if (target.empty() || target == "/") {
        p.list = true;
        return p;
    }
    if (target.front() != '/') return std::nullopt;
    target.remove_prefix(1);
    if (target.empty() || target.find('/') != std::string_view::npos) return std::nullopt;
    p.terminal = target;
    return p;
}

boost::asio::awaitable<response> operator_routes::get_terminals(request& req,
                                                                const request_context& ctx) {
    if (auto denied = authorise(req, ctx)) co_return std::move(*denied);
    const std::string_view target(req.target().data(), req.target().size());
    const auto path = parse_terminals_path(target);
    if (!path) co_return json_error(404, "not_found", "no such endpoint");
    if (!fanout::valid_id(path->store)) {
        co_return json_error(400, "invalid_value", "store_id must be 1-64 of A-Z a-z 0-9 - _ .",
                             "store_id");
    }
    if (!path->list && !fanout::valid_id(path->terminal)) {
        co_return json_error(400, "invalid_value", "terminal_id must be 1-64 of A-Z a-z 0-9 - _ .",
                             "terminal_id");
    }
    if (activity_ == nullptr) co_return presence_unavailable();
    const std::string store(path->store);
    if (!path->list) {
        auto [ec, p] = co_await activity_->read_presence(store, std::string(path->terminal));
        if (ec) co_return presence_unavailable();
        co_return json_response(200, presence_json(store, p, store::unix_ms_now()));
    }
    const std::string_view cursor = query_param(target, "cursor");
    if (!cursor.empty() && !fanout::valid_id(cursor)) {
        co_return json_error(400, "invalid_value", "cursor must be a terminal id (next_cursor)",
                             "cursor");
    }
    std::size_t limit = 100;
    if (const auto l = query_param(target, "limit"); !l.empty()) {
        const auto [end, err] = std::from_chars(l.data(), l.data() + l.size(), limit);
        if (err != std::errc{} || end != l.data() + l.size() || limit == 0 ||
            limit > store::presence_page_max) {
            co_return json_error(400, "invalid_value", "limit must be 1-500", "limit");
        }
    }
    auto [ec, page] = co_await activity_->list_presence(store, std::string(cursor), limit);
    if (ec) co_return presence_unavailable();
    const std::int64_t now = store::unix_ms_now();
    std::string json = "{";
    log::append_json_member(json, "store_id", store);
    json += R"(,"terminals":[)";
    for (std::size_t i = 0; i < page.terminals.size(); ++i) {
        if (i) json += ',';
        json += presence_json(store, page.terminals[i], now);
    }
    json += R"(],"next_cursor":)";
    if (page.next.empty()) {
        json += "null";
    } else {
        json += '"';
        log::append_json_escaped(json, page.next);
        json += '"';
    }
    json += '}';
    co_return json_response(200, std::move(json));
}

}  // namespace posrelay::http
