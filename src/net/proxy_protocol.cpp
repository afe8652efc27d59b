// PROXY protocol v1/v2 parsing (haproxy.org/download/2.9/doc/proxy-protocol.txt) and the
// listener's decision on a connection's first bytes.
#include "posrelay/net/proxy_protocol.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace posrelay::net {

namespace {

namespace ip = boost::asio::ip;

constexpr std::string_view v1_signature = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

proxy_parse invalid(std::string_view why) noexcept {
    proxy_parse p;
    p.status = proxy_status::invalid;
    p.error = why;
    return p;
}

// need_more while `bytes` is a proper prefix of `sig`, not_proxy once it departs, done when
// the whole signature is there.
proxy_status match_signature(std::string_view bytes, std::string_view sig) noexcept {
    const std::size_t n = std::min(bytes.size(), sig.size());
    if (bytes.substr(0, n) != sig.substr(0, n)) return proxy_status::not_proxy;
    return n < sig.size() ? proxy_status::need_more : proxy_status::done;
}

// A decimal port: 1 to 5 digits, no leading zero (except "0"), at most 65535.
bool parse_port(std::string_view s, std::uint16_t& out) noexcept {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
    std::uint32_t n = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), n);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || n > 65535) return false;
    out = static_cast<std::uint16_t>(n);
    return true;
}

// "PROXY TCP4 src dst sport dport\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN[ anything]\r\n".
proxy_parse parse_v1(std::string_view bytes) noexcept {
    const std::size_t window = std::min(bytes.size(), proxy_v1_max_bytes);
    std::size_t end = std::string_view::npos;  // index of '\r' of the "\r\n"
    for (std::size_t i = v1_signature.size(); i < window; ++i) {
        const char c = bytes[i];
        if (c == '\r' && i + 1 < window) {
            if (bytes[i + 1] != '\n') return invalid("v1: CR not followed by LF");
            end = i;
            break;
        }
        if (c == '\n') return invalid("v1: LF without CR");
        if (c != '\r' && (c < 0x20 || c > 0x7E)) return invalid("v1: a byte that is not text");
    }
    if (end == std::string_view::npos) {
        if (bytes.size() >= proxy_v1_max_bytes) return invalid("v1: longer than 107 bytes");
        return proxy_parse{};
    }
    proxy_parse p;
    p.status = proxy_status::done;
    p.size = end + 2;
    p.header.version = 1;
    std::string_view line = bytes.substr(v1_signature.size(), end - v1_signature.size());
    std::array<std::string_view, 6> f{};
    std::size_t count = 0;
    while (count < f.size()) {
        const auto sp = line.find(' ');
        f[count++] = line.substr(0, sp);
        if (sp == std::string_view::npos) {
            line = {};
            break;
        }
        line.remove_prefix(sp + 1);
    }
    if (f[0] == "UNKNOWN") return p;  // what follows is ignored (spec)
    if (f[0] != "TCP4" && f[0] != "TCP6")
        return invalid("v1: protocol is not TCP4, TCP6 or UNKNOWN");
    if (count != 5 || !line.empty()) return invalid("v1: expected 4 fields after the protocol");
    const bool v4 = f[0] == "TCP4";
    std::uint16_t dport = 0;
    auto src = parse_address(f[1]);
    const auto dst = parse_address(f[2]);
    // TCP6 addresses are written in IPv6 form; canonical() may have folded a mapped one.
    const auto family_ok = [&](std::string_view text, const std::optional<address>& a) {
        const bool colon = text.find(':') != std::string_view::npos;
        return a && (v4 ? a->is_v4() && !colon : colon);
    };
    if (!family_ok(f[1], src) || !family_ok(f[2], dst))
        return invalid("v1: an address is not of the protocol's family");
    if (!parse_port(f[3], p.header.source_port) || !parse_port(f[4], dport))
        return invalid("v1: a port is not a number from 0 to 65535");
    p.header.source = src;
    return p;
}

std::uint16_t be16(const unsigned char* b) noexcept {
    return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
}

// 12-byte signature, ver_cmd, fam, 16-bit length, then `length` bytes (addresses, TLVs).
proxy_parse parse_v2(std::string_view bytes) noexcept {
    if (bytes.size() < 16) return proxy_parse{};
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    const unsigned version = b[12] >> 4, command = b[12] & 0x0F;
    const unsigned family = b[13] >> 4, transport = b[13] & 0x0F;
    const std::size_t length = be16(b + 14);
    if (version != 2) return invalid("v2: version is not 2");
    if (command > 1) return invalid("v2: command is neither LOCAL nor PROXY");
    if (family > 3 || transport > 2) return invalid("v2: unknown address family or transport");
    if (length > proxy_v2_max_payload) return invalid("v2: header too large");
    if (bytes.size() < 16 + length) return proxy_parse{};
    proxy_parse p;
    p.status = proxy_status::done;
    p.size = 16 + length;
    p.header.version = 2;
    if (command == 0 || transport != 1) return p;  // LOCAL, UNSPEC or UDP: the peer stands
    const unsigned char* a = b + 16;
    if (family == 1) {
        if (length < 12) return invalid("v2: TCP4 addresses truncated");
        ip::address_v4::bytes_type src{};
        std::copy(a, a + 4, src.begin());
        p.header.source = canonical(ip::address_v4(src));
        p.header.source_port = be16(a + 8);
    } else if (family == 2) {
        if (length < 36) return invalid("v2: TCP6 addresses truncated");
        ip::address_v6::bytes_type src{};
        std::copy(a, a + 16, src.begin());
        p.header.source = canonical(ip::address_v6(src));
        p.header.source_port = be16(a + 32);
    }
    return p;  // family 0 (UNSPEC) or 3 (UNIX): the peer stands
}

}  // namespace

proxy_parse parse_proxy_header(std::string_view bytes) noexcept {
    if (bytes.empty()) return proxy_parse{};
    const auto sig = bytes[0] == 'P' ? v1_signature : v2_signature;
    const auto m = match_signature(bytes, sig);
    if (m == proxy_status::not_proxy) {
        proxy_parse p;
        p.status = proxy_status::not_proxy;
        return p;
    }
    if (m == proxy_status::need_more) return proxy_parse{};
    return sig == v1_signature ? parse_v1(bytes) : parse_v2(bytes);
}

preamble_decision decide_preamble(std::string_view received, bool peer_trusted) noexcept {
    preamble_decision d;
    if (!peer_trusted) {
        // Only the signature is looked at: a peer that may not send a header is refused as
        // soon as it starts one, and served as soon as it cannot be one.
        if (received.empty()) return d;
        const auto m = match_signature(received, received[0] == 'P' ? v1_signature : v2_signature);
        if (m == proxy_status::need_more) return d;
        d.action = m == proxy_status::done ? preamble_action::refuse : preamble_action::proceed;
        if (m == proxy_status::done) d.reason = refused_untrusted_peer;
        return d;
    }
    const auto p = parse_proxy_header(received);
    switch (p.status) {
        case proxy_status::need_more:
            return d;
        case proxy_status::not_proxy:
            d.action = preamble_action::refuse;
            d.reason = refused_missing;
            return d;
        case proxy_status::invalid:
            d.action = preamble_action::refuse;
            d.reason = refused_malformed;
            return d;
        case proxy_status::done:
            break;
    }
    d.action = preamble_action::proceed;
    d.consumed = p.size;
    d.client = p.header.source;
    d.client_port = p.header.source_port;
    return d;
}

}  // namespace posrelay::net
