// Failover decisions, pure (unit-tested in tests/unit/failover_rules_test.cpp): Sentinel's
// answers, and whether a WAIT reply acknowledges a write.
#include <array>
#include <charconv>

#include "posrelay/store/replica_ack.hpp"
#include "posrelay/store/sentinel.hpp"

namespace posrelay::store {

namespace {

std::optional<std::uint16_t> port_of(std::string_view s) {
    unsigned v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

}  // namespace

std::optional<redis_address> master_address(const redis_reply& r) {
    if (r.type != redis_reply::kind::array || r.elements.size() != 2) return std::nullopt;
    const auto& host = r.elements[0];
    const auto& port = r.elements[1];
    if (host.type != redis_reply::kind::string || port.type != redis_reply::kind::string)
        return std::nullopt;
    if (host.str.empty() || host.str.size() > 255) return std::nullopt;
    const auto p = port_of(port.str);
    if (!p) return std::nullopt;
    return redis_address{host.str, *p};
}

bool is_master_role(const redis_reply& r) noexcept {
    return r.type == redis_reply::kind::array && !r.elements.empty() &&
           r.elements[0].type == redis_reply::kind::string && r.elements[0].str == "master";
}

std::optional<redis_address> switched_master(const redis_reply& m, std::string_view master_name) {
    if (m.type != redis_reply::kind::array || m.elements.size() != 3) return std::nullopt;
    if (m.elements[0].str != "message" || m.elements[1].str != "+switch-master")
        return std::nullopt;
    // "<name> <old-ip> <old-port> <new-ip> <new-port>"
    std::array<std::string_view, 5> f;
    std::string_view rest = m.elements[2].str;
    for (std::size_t i = 0; i < f.size(); ++i) {
        const auto sp = rest.find(' ');
        f[i] = rest.substr(0, sp);
        if (f[i].empty()) return std::nullopt;
        if (i + 1 < f.size() && sp == std::string_view::npos) return std::nullopt;
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    }
    if (!rest.empty() || f[0] != master_name) return std::nullopt;
    const auto p = port_of(f[4]);
    if (!p) return std::nullopt;
    return redis_address{std::string(f[3]), *p};
}

boost::system::error_code wait_outcome(const boost::system::error_code& ec,
                                       const redis_reply& reply, unsigned wanted) noexcept {
    if (ec) return ec;
    if (reply.type != redis_reply::kind::integer)
        return make_error_code(redis_errc::protocol_error);
    if (reply.integer < 0 || static_cast<unsigned long long>(reply.integer) < wanted)
        return make_error_code(redis_errc::replicas_not_acknowledged);
    return {};
}

}  // namespace posrelay::store
