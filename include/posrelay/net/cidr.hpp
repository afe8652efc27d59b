// Addresses and CIDR blocks (--trusted-proxies): whom posrelay believes about a client's
// address. Pure: parsing, canonical form and membership, no sockets.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace posrelay::net {

using address = boost::asio::ip::address;

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack socket shows an IPv4 peer) as
// the IPv4 address; any other address unchanged.
[[nodiscard]] address canonical(const address& a) noexcept;

// A literal IPv4 or IPv6 address (inet_pton rules: no leading zeros in IPv4, no zone id),
// in canonical form; nullopt for anything else. At most 45 characters are considered.
[[nodiscard]] std::optional<address> parse_address(std::string_view s) noexcept;

// A block of addresses: `network` with its low (width - prefix) bits zero.
struct cidr {
    address network;
    unsigned prefix = 0;
    bool operator==(const cidr&) const = default;
};

// "10.0.0.0/8", "::1/128", or a bare address (one host). An IPv4-mapped IPv6 block of prefix
// 96 or more is taken as the IPv4 block. Refused (nullopt, `error` says why): anything else,
// a prefix past the address width, host bits set ("10.0.0.1/8": a typo would widen trust).
[[nodiscard]] std::optional<cidr> parse_cidr(std::string_view s, std::string* error = nullptr);

// True when `a` (canonicalised) is in `block`.
[[nodiscard]] bool contains(const cidr& block, const address& a) noexcept;

// A list of blocks, matched in order.
class cidr_set {
public:
    cidr_set() = default;
    explicit cidr_set(std::vector<cidr> blocks) : blocks_(std::move(blocks)) {}
    [[nodiscard]] bool contains(const address& a) const noexcept;
    [[nodiscard]] bool empty() const noexcept { return blocks_.empty(); }
    [[nodiscard]] const std::vector<cidr>& blocks() const noexcept { return blocks_; }

private:
    std::vector<cidr> blocks_;
};

// "CIDR[,CIDR...]" (spaces around entries allowed); "" or "none": the empty set. Throws
// std::invalid_argument naming the entry and the reason. At most 1,024 entries.
[[nodiscard]] cidr_set parse_cidr_list(std::string_view s);

}  // namespace posrelay::net
