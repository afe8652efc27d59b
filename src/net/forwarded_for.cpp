// X-Forwarded-For: the right-to-left walk past trusted proxies.
#include "posrelay/net/forwarded_for.hpp"

#include <charconv>
#include <cstdint>

namespace posrelay::net {

namespace {
std::string_view trim(std::string_view v) noexcept {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
        v.remove_suffix(1);
    return v;
}

bool valid_port(std::string_view p) noexcept {
    std::uint32_t n = 0;
    const auto r = std::from_chars(p.data(), p.data() + p.size(), n);
    return !p.empty() && p.size() <= 5 && r.ec == std::errc{} && r.ptr == p.data() + p.size() &&
           n <= 65535;
}
}  // namespace

std::optional<address> forwarded_entry(std::string_view raw) noexcept {
    const std::string_view e = trim(raw);
    if (e.starts_with('[')) {  // "[v6]" or "[v6]:port"
        const auto close = e.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        const auto rest = e.substr(close + 1);
        if (!rest.empty() && !(rest.starts_with(':') && valid_port(rest.substr(1))))
            return std::nullopt;
        const auto a = parse_address(e.substr(1, close - 1));
        if (!a || e.substr(1, close - 1).find(':') == std::string_view::npos) return std::nullopt;
        return a;
    }
    const auto colon = e.find(':');
    if (colon != std::string_view::npos && e.find(':', colon + 1) == std::string_view::npos) {
        // One colon: "v4:port" (an IPv6 address has at least two).
        if (!valid_port(e.substr(colon + 1))) return std::nullopt;
        const auto a = parse_address(e.substr(0, colon));
        if (!a || !a->is_v4()) return std::nullopt;
        return a;
    }
    return parse_address(e);
}

forwarded_client client_from_forwarded_for(std::string_view header, const cidr_set& trusted) {
    forwarded_client out;
    if (trim(header).empty()) return out;
    std::optional<address> leftmost;
    std::string_view rest = header;
    for (;;) {
        const auto comma = rest.rfind(',');
        const auto entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
        const auto a = forwarded_entry(entry);
        if (!a) {
            out.malformed = true;
            return out;
        }
        if (!trusted.contains(*a)) {
            out.client = a;
            return out;
        }
        leftmost = a;
        if (comma == std::string_view::npos) break;
        rest = rest.substr(0, comma);
    }
    out.client = leftmost;  // every hop is a trusted proxy: the first one is the client
    return out;
}

}  // namespace posrelay::net
