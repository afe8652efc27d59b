// INFO reply parsing for the embedded Redis's metrics (store/redis_info.hpp).
#include "posrelay/store/redis_info.hpp"

#include <charconv>

namespace posrelay::store {

info_reply read_info_reply(std::string_view buffer, std::size_t max_bytes) {
    using st = info_reply::state;
    if (buffer.empty()) return {};
    if (buffer.front() != '$') return {st::invalid, {}};
    const auto eol = buffer.find("\r\n");
    if (eol == std::string_view::npos)
        return buffer.size() > 24 ? info_reply{st::invalid, {}} : info_reply{};
    std::size_t len = 0;
    const auto digits = buffer.substr(1, eol - 1);
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (digits.empty() || r.ec != std::errc{} || r.ptr != digits.data() + digits.size() ||
        len > max_bytes)
        return {st::invalid, {}};
    const std::size_t start = eol + 2;
    if (buffer.size() < start + len + 2) return {};
    if (buffer.substr(start + len, 2) != "\r\n") return {st::invalid, {}};
    return {st::complete, buffer.substr(start, len)};
}

std::optional<std::int64_t> info_field(std::string_view info, std::string_view name) {
    while (!info.empty()) {
        const auto nl = info.find('\n');
        std::string_view line = info.substr(0, nl);
        info = nl == std::string_view::npos ? std::string_view{} : info.substr(nl + 1);
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (line.size() <= name.size() || !line.starts_with(name) || line[name.size()] != ':')
            continue;
        const auto value = line.substr(name.size() + 1);
        std::int64_t v = 0;
        const auto r = std::from_chars(value.data(), value.data() + value.size(), v);
        if (value.empty() || r.ec != std::errc{} || r.ptr != value.data() + value.size())
            return std::nullopt;
        return v;
    }
    return std::nullopt;
}

redis_info parse_redis_info(std::string_view info) {
    return {info_field(info, "used_memory"), info_field(info, "aof_current_size"),
            info_field(info, "aof_rewrite_in_progress"), info_field(info, "aof_base_size")};
}

std::optional<redis_version> parse_redis_version(std::string_view info) {
    constexpr std::string_view name = "redis_version:";
    const auto at = info.find(name);
    if (at == std::string_view::npos || (at > 0 && info[at - 1] != '\n')) return std::nullopt;
    std::string_view v = info.substr(at + name.size());
    v = v.substr(0, v.find_first_of("\r\n"));
    int parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; ++i) {
        const auto r = std::from_chars(v.data(), v.data() + v.size(), parts[i]);
        if (r.ec != std::errc{} || parts[i] < 0) return std::nullopt;
        v.remove_prefix(static_cast<std::size_t>(r.ptr - v.data()));
        if (v.empty())
            return i >= 1 ? std::optional(redis_version{parts[0], parts[1], parts[2]})
                          : std::nullopt;
        if (v.front() != '.' || i == 2) return std::nullopt;
        v.remove_prefix(1);
    }
    return std::nullopt;
}

}  // namespace posrelay::store
