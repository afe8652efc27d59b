// The PROXY protocol parser (v1 and v2) and the listener's decision on a connection's first
// bytes, as tables; every proper prefix of a valid header asks for more.
#include <gtest/gtest.h>

#include <string>

#include "posrelay/net/proxy_protocol.hpp"

namespace posrelay::net {
namespace {

using namespace std::string_literals;

const std::string v2_sig = "\r\n\r\n\0\r\nQUIT\n"s;

// A v2 header: ver_cmd, fam, then `payload` (its length is written for it).
std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& payload) {
    std::string h = v2_sig;
    h += static_cast<char>(ver_cmd);
    h += static_cast<char>(fam);
    h += static_cast<char>(payload.size() >> 8);
    h += static_cast<char>(payload.size() & 0xFF);
    return h + payload;
}
// TCP4 203.0.113.7:51000 -> 10.0.0.1:443, then `extra` (TLVs).
std::string v2_tcp4(const std::string& extra = {}) {
    return v2(0x21, 0x11, "\xCB\x00\x71\x07\x0A\x00\x00\x01\xC7\x38\x01\xBB"s + extra);
}
// TCP6 2001:db8::7:51000 -> 2001:db8::1:443.
std::string v2_tcp6() {
    std::string p = "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x07"s;
    p += "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01"s;
    p += "\xC7\x38\x01\xBB"s;
    return v2(0x21, 0x21, p);
}

TEST(ProxyProtocol, ParsesHeaders) {
    struct row {
        std::string bytes;
        proxy_status status;
        std::size_t size;
        const char* source;  // "" when none
        std::uint16_t port;
    };
    const std::string v1_tcp4 = "PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n";
    const std::string v1_tcp6 = "PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n";
    const std::string v1_max =
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_EQ(v1_max.size(), 104u);
    const row rows[] = {
        {v1_tcp4 + "GET / HTTP/1.1\r\n", proxy_status::done, v1_tcp4.size(), "203.0.113.7", 51000},
        {v1_tcp6, proxy_status::done, v1_tcp6.size(), "2001:db8::7", 51000},
        {v1_max, proxy_status::done, 104, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535},
        {"PROXY UNKNOWN\r\n", proxy_status::done, 15, "", 0},
        {"PROXY UNKNOWN ffff:: 1:: 1 2\r\nX", proxy_status::done, 30, "", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 0 1\r\n", proxy_status::done, 32, "1.2.3.4", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 01 1\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 2001:db8::7 5.6.7.8 1 1\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 1 1\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP6 1.2.3.4 2001:db8::1 1 1\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", proxy_status::invalid, 0, "", 0},
        {"PROXY TCP4 1.2.3.4\x01 5.6.7.8 1 2\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY UNKNOWN " + std::string(91, 'x') + "\r\n", proxy_status::done, 107, "", 0},
        {"PROXY UNKNOWN " + std::string(92, 'x') + "\r\n", proxy_status::invalid, 0, "", 0},
        {"PROXY UNKNOWN " + std::string(200, 'x'), proxy_status::invalid, 0, "", 0},
        {"PROXY UNKNOWN " + std::string(50, 'x'), proxy_status::need_more, 0, "", 0},
        {"POST / HTTP/1.1\r\n", proxy_status::not_proxy, 0, "", 0},
        {"{\"op\":\"hello\"}\n", proxy_status::not_proxy, 0, "", 0},
        {"\x16\x03\x01\x02\x00"s, proxy_status::not_proxy, 0, "", 0},  // a TLS ClientHello
        {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", proxy_status::not_proxy, 0, "", 0},
        // v2
        {v2_tcp4() + "payload", proxy_status::done, 28, "203.0.113.7", 51000},
        {v2_tcp4("\x04\x00\x02xy"s), proxy_status::done, 33, "203.0.113.7", 51000},  // a TLV
        {v2_tcp6(), proxy_status::done, 52, "2001:db8::7", 51000},
        {v2(0x20, 0x00, ""), proxy_status::done, 16, "", 0},  // LOCAL
        {v2(0x20, 0x11, std::string(12, 'a')), proxy_status::done, 28, "",
         0},                                                  // LOCAL, addresses ignored
        {v2(0x21, 0x00, ""), proxy_status::done, 16, "", 0},  // PROXY UNSPEC
        {v2(0x21, 0x12, std::string(12, 'a')), proxy_status::done, 28, "", 0},    // UDP: the peer
        {v2(0x21, 0x31, std::string(216, 'a')), proxy_status::done, 232, "", 0},  // UNIX: the peer
        {v2(0x21, 0x11, std::string(11, 'a')), proxy_status::invalid, 0, "", 0},  // truncated
        {v2(0x21, 0x21, std::string(35, 'a')), proxy_status::invalid, 0, "", 0},
        {v2(0x11, 0x11, std::string(12, 'a')), proxy_status::invalid, 0, "", 0},  // version 1
        {v2(0x22, 0x11, std::string(12, 'a')), proxy_status::invalid, 0, "", 0},  // command 2
        {v2(0x21, 0x41, std::string(12, 'a')), proxy_status::invalid, 0, "", 0},  // family 4
        {v2(0x21, 0x13, std::string(12, 'a')), proxy_status::invalid, 0, "", 0},  // transport 3
        {v2(0x21, 0x11, std::string(1025, 'a')), proxy_status::invalid, 0, "", 0},
        {v2(0x21, 0x11, std::string(1024, 'a')), proxy_status::done, 1040, "97.97.97.97", 0x6161},
        {v2_tcp4().substr(0, 27), proxy_status::need_more, 0, "", 0},
        {v2_sig.substr(0, 5) + "x", proxy_status::not_proxy, 0, "", 0},
    };
    for (const auto& r : rows) {
        const auto p = parse_proxy_header(r.bytes);
        const std::string shown = r.bytes.substr(0, 60);
        EXPECT_EQ(p.status, r.status) << shown << " error=" << p.error;
        if (r.status == proxy_status::invalid) {
            EXPECT_FALSE(p.error.empty()) << shown;
        }
        if (r.status != proxy_status::done) continue;
        EXPECT_EQ(p.size, r.size) << shown;
        if (*r.source == '\0') {
            EXPECT_FALSE(p.header.source) << shown;
        } else {
            ASSERT_TRUE(p.header.source) << shown;
            EXPECT_EQ(*p.header.source, boost::asio::ip::make_address(r.source)) << shown;
            EXPECT_EQ(p.header.source_port, r.port) << shown;
        }
    }
}

TEST(ProxyProtocol, EveryProperPrefixOfAHeaderNeedsMore) {
    for (const std::string& h : {"PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n"s, v2_tcp4(),
                                 v2_tcp6(), "PROXY UNKNOWN\r\n"s}) {
        for (std::size_t n = 0; n < h.size(); ++n)
            EXPECT_EQ(parse_proxy_header(h.substr(0, n)).status, proxy_status::need_more)
                << n << " of " << h.size();
        EXPECT_EQ(parse_proxy_header(h).status, proxy_status::done);
    }
}

TEST(ProxyPreamble, TrustedPeersMustSendAHeaderOthersMustNot) {
    const std::string http = "POST /v1/midtrans/notifications HTTP/1.1\r\n";
    const std::string v1 = "PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n";
    struct row {
        std::string bytes;
        bool trusted;
        preamble_action action;
        std::string_view reason;
        std::size_t consumed;
    };
    const row rows[] = {
        {v1 + http, true, preamble_action::proceed, "", v1.size()},
        {v2_tcp4() + http, true, preamble_action::proceed, "", 28},
        {v2(0x20, 0x00, "") + http, true, preamble_action::proceed, "", 16},
        {http, true, preamble_action::refuse, "missing", 0},
        {"PROXY TCP4 nonsense\r\n", true, preamble_action::refuse, "malformed", 0},
        {v1.substr(0, 20), true, preamble_action::read_more, "", 0},
        {"", true, preamble_action::read_more, "", 0},
        // Untrusted: refused as soon as the signature is whole, served as soon as it departs.
        {v1 + http, false, preamble_action::refuse, "untrusted_peer", 0},
        {"PROXY ", false, preamble_action::refuse, "untrusted_peer", 0},
        {"PROXY", false, preamble_action::read_more, "", 0},
        {v2_tcp4(), false, preamble_action::refuse, "untrusted_peer", 0},
        {v2_sig.substr(0, 11), false, preamble_action::read_more, "", 0},
        {http, false, preamble_action::proceed, "", 0},
        {"P", false, preamble_action::read_more, "", 0},
        {"PO", false, preamble_action::proceed, "", 0},
        {"{\"op\":\"hello\"}\n", false, preamble_action::proceed, "", 0},
        {"", false, preamble_action::read_more, "", 0},
    };
    for (const auto& r : rows) {
        const auto d = decide_preamble(r.bytes, r.trusted);
        EXPECT_EQ(d.action, r.action) << r.bytes.substr(0, 40) << " trusted=" << r.trusted;
        EXPECT_EQ(d.reason, r.reason) << r.bytes.substr(0, 40);
        EXPECT_EQ(d.consumed, r.consumed) << r.bytes.substr(0, 40);
    }
    const auto d = decide_preamble(v1 + http, true);
    ASSERT_TRUE(d.client);
    EXPECT_EQ(d.client->to_string(), "203.0.113.7");
    EXPECT_EQ(d.client_port, 51000);
}

}  // namespace
}  // namespace posrelay::net
