// The frames posrelay sends to terminals: compact JSON objects, strings escaped, each
// ending in '\n' (the line framing of TCP/TLS; the WebSocket transport strips it).
#include "posrelay/fanout/protocol.hpp"

#include <cassert>
#include <charconv>
#include <cstdint>
#include <string>

#include "posrelay/log.hpp"

namespace posrelay::fanout {

namespace {

void append_number(std::string& out, std::uint64_t n) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, n).ptr);  // 20 digits at most
}

void append_number_member(std::string& out, std::string_view key, std::uint64_t value) {
    out += '"';
    out += key;
    out += "\":";
    append_number(out, value);
}

bool is_json_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

std::string welcome_frame(const welcome_info& w) {
    std::string out;
    out.reserve(256 + w.terminal_id.size() + w.store_id.size() + w.node.size());
    out += R"({"op":"welcome","v":)";
    append_number(out, protocol_version);
    out += ',';
    log::append_json_member(out, "terminal_id", w.terminal_id);
    out += ',';
    log::append_json_member(out, "store_id", w.store_id);
    out += ',';
    append_number_member(out, "last_seq", w.last_seq);
    out += ',';
    log::append_json_member(out, "epoch", w.epoch);
    out += R"(,"resume_from":)";
    if (w.resume_from) {
        append_number(out, *w.resume_from);
    } else {
        out += "null";
    }
    out += ',';
    append_number_member(out, "heartbeat_ms", w.heartbeat_ms);
    out += ',';
    append_number_member(out, "max_frame_bytes", w.max_frame_bytes);
    out += ',';
    append_number_member(out, "max_inflight", w.max_inflight);
    out += w.subscribe_store ? R"(,"subscribe":["store"],)" : R"(,"subscribe":[],)";
    log::append_json_member(out, "node", w.node);
    if (w.observer) out += R"(,"observer":true)";
    out += "}\n";
    return out;
}

// The stored event is a compact object; "op":"event" goes in front of its members. A
// line break inside valid JSON can only be whitespace between tokens: it becomes a space,
// so that a pretty-printed event still travels as one line.
std::string event_frame(std::string_view event_json) {
    while (!event_json.empty() && is_json_space(event_json.front()))
        event_json.remove_prefix(1);
    while (!event_json.empty() && is_json_space(event_json.back()))
        event_json.remove_suffix(1);
    assert(event_json.size() >= 2 && event_json.front() == '{' && event_json.back() == '}');
    if (event_json.size() < 2 || event_json.front() != '{') return "{\"op\":\"event\"}\n";
    std::string_view rest = event_json.substr(1);  // the members and the closing brace
    std::string_view members = rest;
    while (!members.empty() && is_json_space(members.front()))
        members.remove_prefix(1);

    std::string out;
    out.reserve(rest.size() + 16);
    out += R"({"op":"event")";
    if (members.front() != '}') out += ',';
    const std::size_t body = out.size();
    out += members;
    for (std::size_t i = body; i < out.size(); ++i) {
        if (out[i] == '\n' || out[i] == '\r') out[i] = ' ';
    }
    out += '\n';
    return out;
}

std::string error_frame(errc code, std::string_view message, bool fatal,
                        std::string_view request_id, std::string_view extra_members) {
    std::string out;
    out.reserve(64 + message.size() + request_id.size());
    out += R"({"op":"error",)";
    log::append_json_member(out, "code", to_string(code));
    out += ',';
    log::append_json_member(out, "message", message);
    out += fatal ? R"(,"fatal":true)" : R"(,"fatal":false)";
    if (!request_id.empty()) {
        out += ',';
        log::append_json_member(out, "id", request_id);
    }
    if (!extra_members.empty()) {
        out += ',';
        out += extra_members;
    }
    out += "}\n";
    return out;
}

std::string resync_frame(std::string_view epoch, std::uint64_t last_seq) {
    std::string extra;
    log::append_json_member(extra, "epoch", epoch);
    extra += ',';
    append_number_member(extra, "last_seq", last_seq);
    return error_frame(errc::resync,
                       "this terminal's events are counted in a new epoch: re-read the status "
                       "of your open orders, then reconnect with this epoch and resume_from 0",
                       true, {}, extra);
}

std::string ping_server_frame() {
    return "{\"op\":\"ping\"}\n";
}

std::string pong_frame_for(std::string_view id) {
    if (id.empty()) return "{\"op\":\"pong\"}\n";
    std::string out = R"({"op":"pong",)";
    log::append_json_member(out, "id", id);
    out += "}\n";
    return out;
}

std::string goaway_frame(std::string_view reason, std::uint64_t reconnect_after_ms) {
    std::string out = R"({"op":"goaway",)";
    log::append_json_member(out, "reason", reason);
    out += ',';
    append_number_member(out, "reconnect_after_ms", reconnect_after_ms);
    out += "}\n";
    return out;
}

}  // namespace posrelay::fanout
