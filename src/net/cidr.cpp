// CIDR blocks and the trusted-proxy set: strict parsing, IPv4-mapped addresses folded to
// IPv4, prefix matching on the address bytes.
#include "posrelay/net/cidr.hpp"

#include <array>
#include <charconv>
#include <stdexcept>

namespace posrelay::net {

namespace ip = boost::asio::ip;

address canonical(const address& a) noexcept {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
    return a;
}

std::optional<address> parse_address(std::string_view s) noexcept {
    // inet_pton would take a zone id ("fe80::1%eth0") through make_address_v6: refused.
    if (s.empty() || s.size() > 45 || s.find('%') != std::string_view::npos) return std::nullopt;
    boost::system::error_code ec;
    const auto a = ip::make_address(std::string(s), ec);
    if (ec) return std::nullopt;
    return canonical(a);
}

namespace {
template <std::size_t N>
bool host_bits_zero(const std::array<unsigned char, N>& bytes, unsigned prefix) {
    for (std::size_t bit = prefix; bit < N * 8; ++bit) {
        if (bytes[bit / 8] & (0x80u >> (bit % 8))) return false;
    }
    return true;
}

template <std::size_t N>
bool same_prefix(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b,
                 unsigned prefix) {
    std::size_t i = 0;
    for (; (i + 1) * 8 <= prefix; ++i) {
        if (a[i] != b[i]) return false;
    }
    const unsigned rest = prefix % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<unsigned char>(0xFFu << (8 - rest));
    return (a[i] & mask) == (b[i] & mask);
}

std::optional<cidr> fail(std::string* error, std::string why) {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
}
}  // namespace

std::optional<cidr> parse_cidr(std::string_view s, std::string* error) {
    const auto slash = s.find('/');
    const auto a = parse_address(s.substr(0, slash));
    if (!a) return fail(error, "not an IPv4 or IPv6 address");
    // The width of what was written: ::ffff:10.0.0.0/104 is an IPv6 spelling of 10.0.0.0/8.
    const bool written_v6 = s.substr(0, slash).find(':') != std::string_view::npos;
    const unsigned width = written_v6 ? 128 : 32;
    unsigned prefix = width;
    if (slash != std::string_view::npos) {
        const auto p = s.substr(slash + 1);
        const auto r = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || p.size() > 3 || r.ec != std::errc{} || r.ptr != p.data() + p.size())
            return fail(error, "the prefix length is not a number");
        if (prefix > width)
            return fail(error, "the prefix length is over " + std::to_string(width));
    }
    if (written_v6 && a->is_v4()) {
        if (prefix < 96) return fail(error, "an IPv4-mapped block needs a prefix of 96 or more");
        prefix -= 96;
    }
    const bool zero = a->is_v4() ? host_bits_zero(a->to_v4().to_bytes(), prefix)
                                 : host_bits_zero(a->to_v6().to_bytes(), prefix);
    if (!zero)
        return fail(error, "host bits are set (the network address has low bits past the prefix)");
    return cidr{*a, prefix};
}

bool contains(const cidr& block, const address& raw) noexcept {
    const address a = canonical(raw);
    if (a.is_v4() != block.network.is_v4()) return false;
    if (a.is_v4())
        return same_prefix(a.to_v4().to_bytes(), block.network.to_v4().to_bytes(), block.prefix);
    return same_prefix(a.to_v6().to_bytes(), block.network.to_v6().to_bytes(), block.prefix);
}

bool cidr_set::contains(const address& a) const noexcept {
    const address c = canonical(a);
    for (const auto& b : blocks_) {
        if (net::contains(b, c)) return true;
    }
    return false;
}

cidr_set parse_cidr_list(std::string_view s) {
    auto trim = [](std::string_view v) {
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
            v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
            v.remove_suffix(1);
        return v;
    };
    std::vector<cidr> out;
    if (trim(s).empty() || trim(s) == "none") return cidr_set{};
    while (true) {
        const auto comma = s.find(',');
        const auto entry = trim(s.substr(0, comma));
        std::string why;
        auto c = parse_cidr(entry, &why);
        if (!c) {
            std::string shown;
            for (char ch : entry.substr(0, 64))
                shown += ch >= 0x20 && ch < 0x7F ? ch : '?';
            throw std::invalid_argument("'" + shown +
                                        "': " + (entry.empty() ? "empty entry" : why));
        }
        if (out.size() == 1024) throw std::invalid_argument("more than 1024 entries");
        out.push_back(*c);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return cidr_set(std::move(out));
}

}  // namespace posrelay::net
