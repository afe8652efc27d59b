// The trusted-proxy set (CIDR parsing and matching) and the X-Forwarded-For walk, as tables.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "posrelay/net/cidr.hpp"
#include "posrelay/net/forwarded_for.hpp"

namespace posrelay::net {
namespace {

address addr(const char* s) {
    return boost::asio::ip::make_address(s);
}

TEST(Cidr, ParsesBlocksAndRefusesWhatIsNotOne) {
    struct row {
        const char* text;
        bool ok;
        const char* network;
        unsigned prefix;
    };
    const row rows[] = {
        {"10.0.0.0/8", true, "10.0.0.0", 8},
        {"127.0.0.1/32", true, "127.0.0.1", 32},
        {"127.0.0.1", true, "127.0.0.1", 32},
        {"0.0.0.0/0", true, "0.0.0.0", 0},
        {"::1/128", true, "::1", 128},
        {"::1", true, "::1", 128},
        {"2001:db8::/32", true, "2001:db8::", 32},
        {"::/0", true, "::", 0},
        {"::ffff:10.0.0.0/104", true, "10.0.0.0", 8},  // the IPv4 block, mapped
        {"::ffff:10.0.0.1", true, "10.0.0.1", 32},
        {"10.0.0.1/8", false, "", 0},  // host bits set
        {"2001:db8::1/32", false, "", 0},
        {"10.0.0.0/33", false, "", 0},
        {"::/129", false, "", 0},
        {"::ffff:10.0.0.0/95", false, "", 0},
        {"10.0.0.0/", false, "", 0},
        {"10.0.0.0/x", false, "", 0},
        {"10.0.0.0/-1", false, "", 0},
        {"10.0.0.0/0008", false, "", 0},
        {"010.0.0.0/8", false, "", 0},  // no leading zeros (octal in some parsers)
        {"10.0.0/8", false, "", 0},
        {"fe80::1%eth0", false, "", 0},
        {"localhost", false, "", 0},
        {"", false, "", 0},
        {" 10.0.0.0/8", false, "", 0},
    };
    for (const auto& r : rows) {
        std::string why;
        const auto c = parse_cidr(r.text, &why);
        EXPECT_EQ(c.has_value(), r.ok) << r.text;
        if (c && r.ok) {
            EXPECT_EQ(c->network, addr(r.network)) << r.text;
            EXPECT_EQ(c->prefix, r.prefix) << r.text;
        }
        if (!r.ok) {
            EXPECT_FALSE(why.empty()) << r.text;
        }
    }
}

TEST(Cidr, MatchesByPrefixAndFamily) {
    struct row {
        const char* block;
        const char* a;
        bool in;
    };
    const row rows[] = {
        {"10.0.0.0/8", "10.255.1.2", true},
        {"10.0.0.0/8", "11.0.0.0", false},
        {"10.0.0.0/8", "::ffff:10.1.2.3", true},  // a dual-stack socket's IPv4 peer
        {"10.0.0.0/8", "::a00:1", false},         // not mapped: another address
        {"192.168.4.0/22", "192.168.7.255", true},
        {"192.168.4.0/22", "192.168.8.0", false},
        {"192.168.4.0/22", "192.168.3.255", false},
        {"127.0.0.1/32", "127.0.0.1", true},
        {"127.0.0.1/32", "127.0.0.2", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"0.0.0.0/0", "::1", false},
        {"::1/128", "::1", true},
        {"::1/128", "127.0.0.1", false},
        {"2001:db8::/33", "2001:db8:7fff::1", true},
        {"2001:db8::/33", "2001:db8:8000::1", false},
        {"::/0", "2001:db8::1", true},
        {"::/0", "10.0.0.1", false},
    };
    for (const auto& r : rows)
        EXPECT_EQ(contains(*parse_cidr(r.block), addr(r.a)), r.in) << r.block << " " << r.a;
}

TEST(Cidr, ListsParseWithSpacesAndRefuseBadEntries) {
    const auto s = parse_cidr_list("127.0.0.1/32, 10.0.0.0/8 ,::1/128");
    EXPECT_EQ(s.blocks().size(), 3u);
    EXPECT_TRUE(s.contains(addr("10.9.9.9")));
    EXPECT_TRUE(s.contains(addr("::1")));
    EXPECT_FALSE(s.contains(addr("192.0.2.1")));
    EXPECT_TRUE(parse_cidr_list("").empty());
    EXPECT_TRUE(parse_cidr_list("none").empty());
    for (const char* bad : {"10.0.0.0/8,", ",10.0.0.0/8", "10.0.0.0/8,,::1", "10.0.0.1/8", "any"})
        EXPECT_THROW((void)parse_cidr_list(bad), std::invalid_argument) << bad;
    try {
        (void)parse_cidr_list("10.0.0.0/8,10.0.0.1/8");
        ADD_FAILURE();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("'10.0.0.1/8': host bits"), std::string::npos)
            << e.what();
    }
}

TEST(ForwardedFor, WalksRightToLeftPastTrustedProxies) {
    const auto trusted = parse_cidr_list("10.0.0.0/8,2001:db8:ffff::/48");
    struct row {
        const char* header;
        const char* client;  // "" when none
        bool malformed;
    };
    const row rows[] = {
        {"", "", false},
        {"   ", "", false},
        {"203.0.113.7", "203.0.113.7", false},
        {"203.0.113.7, 10.0.0.2", "203.0.113.7", false},
        {"203.0.113.7,10.0.0.2,10.0.0.3", "203.0.113.7", false},
        // A client's own (spoofed) entries left of the first untrusted address are not read.
        {"1.1.1.1, 198.51.100.4, 10.0.0.2", "198.51.100.4", false},
        {"garbage, 198.51.100.4", "198.51.100.4", false},
        // Every hop trusted: the leftmost.
        {"10.1.1.1, 10.0.0.2", "10.1.1.1", false},
        {"2001:db8::5, 2001:db8:ffff::1", "2001:db8::5", false},
        {"[2001:db8::5]:443", "2001:db8::5", false},
        {"[2001:db8::5]", "2001:db8::5", false},
        {"203.0.113.7:5123", "203.0.113.7", false},
        {"\t203.0.113.7\t", "203.0.113.7", false},
        {"::ffff:203.0.113.7", "203.0.113.7", false},
        // Malformed where the walk reaches it.
        {"203.0.113.7, nonsense", "", true},
        {"203.0.113.7,", "", true},
        {"unknown, 10.0.0.2", "", true},
        {"203.0.113.7:99999", "", true},
        {"203.0.113.7:", "", true},
        {"[203.0.113.7]", "", true},
        {"[2001:db8::5", "", true},
        {"[2001:db8::5]x", "", true},
        {"2001:db8::5:80:", "", true},
        {"fe80::1%eth0", "", true},
        {"203.0.113.7 10.0.0.2", "", true},
    };
    for (const auto& r : rows) {
        const auto f = client_from_forwarded_for(r.header, trusted);
        EXPECT_EQ(f.malformed, r.malformed) << r.header;
        if (*r.client == '\0') {
            EXPECT_FALSE(f.client) << r.header;
        } else {
            ASSERT_TRUE(f.client) << r.header;
            EXPECT_EQ(*f.client, addr(r.client)) << r.header;
        }
    }
}

TEST(ForwardedFor, LongHeadersAreWalkedWithoutLimitTrouble) {
    std::string h = "198.51.100.1";
    for (int i = 0; i < 2000; ++i)
        h += ", 10.0.0." + std::to_string(i % 250);
    const auto f = client_from_forwarded_for(h, parse_cidr_list("10.0.0.0/8"));
    ASSERT_TRUE(f.client);
    EXPECT_EQ(*f.client, addr("198.51.100.1"));
}

}  // namespace
}  // namespace posrelay::net
