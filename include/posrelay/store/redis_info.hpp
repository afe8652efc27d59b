// The embedded Redis's INFO, the fields posrelay exports as metrics: parsed from the raw
// reply read off its unix socket. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace posrelay::store {

// Where reading one RESP reply to INFO stands. `body` views into the buffer given.
struct info_reply {
    enum class state { incomplete, complete, invalid } st = state::incomplete;
    std::string_view body;  // the bulk string's text when complete
};

// A bulk string reply ("$<len>\r\n<len bytes>\r\n"): incomplete until all of it is in
// `buffer`; invalid for an error reply, another type, a malformed or negative length, or a
// length above `max_bytes`.
[[nodiscard]] info_reply read_info_reply(std::string_view buffer, std::size_t max_bytes);

// The integer value of field `name` in INFO text ("name:value" lines, "# Section" headers,
// CRLF or LF line ends); nullopt when the field is absent or its value is not an integer.
[[nodiscard]] std::optional<std::int64_t> info_field(std::string_view info, std::string_view name);

// The fields posrelay exports; a field absent from the text stays nullopt.
struct redis_info {
    std::optional<std::int64_t> used_memory;              // bytes
    std::optional<std::int64_t> aof_current_size;         // bytes (AOF on)
    std::optional<std::int64_t> aof_rewrite_in_progress;  // 0 or 1
    std::optional<std::int64_t> aof_base_size;            // bytes after the last rewrite
};
[[nodiscard]] redis_info parse_redis_info(std::string_view info);

// The server's version from INFO text (`redis_version:7.0.15`); nullopt when absent or not
// MAJOR.MINOR[.PATCH] digits.
struct redis_version {
    int major = 0, minor = 0, patch = 0;
    friend auto operator<=>(const redis_version&, const redis_version&) = default;
};
[[nodiscard]] std::optional<redis_version> parse_redis_version(std::string_view info);

}  // namespace posrelay::store
