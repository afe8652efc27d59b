// Structured logging: one JSON object per line on stderr, written with a single write(2)
// so lines from several threads never interleave. Never pass a secret to a log line.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace posrelay::log {

enum class level : std::uint8_t { debug, info, warn, error };
[[nodiscard]] std::optional<level> parse_level(std::string_view s) noexcept;
[[nodiscard]] std::string_view to_string(level l) noexcept;

void set_level(level l) noexcept;
[[nodiscard]] bool enabled(level l) noexcept;
// Redirects output to `fd` (default 2, stderr). For tests.
void set_fd(int fd) noexcept;

// Builds one line: {"ts":"2026-11-24T05:00:00.123Z","level":"warn","msg":"...",k:v...}
// and writes it when destroyed. A line below the configured level costs one branch.
//   log::line(log::level::warn, "notification rejected").str("reason", r).num("status", 401);
class line {
public:
    line(level l, std::string_view msg);
    ~line();
    line(const line&) = delete;
    line& operator=(const line&) = delete;

    line& str(std::string_view key, std::string_view value);
    line& num(std::string_view key, std::int64_t value);
    line& dbl(std::string_view key, double value);
    line& boolean(std::string_view key, bool value);

private:
    bool on_;
    std::string buf_;
};

// The completion handler of a spawned coroutine: an exception that escaped it (a bug) is
// logged at error level with `what`, never lost. Does nothing for a null pointer.
void escaped(std::exception_ptr e, std::string_view what) noexcept;

// Appends `s` to `out` as the contents of a JSON string (no quotes): escapes ", \ and
// control characters; bytes that are not valid UTF-8 become U+FFFD.
void append_json_escaped(std::string& out, std::string_view s);

// Appends the JSON object member "key":"value", both escaped (no separator before it).
void append_json_member(std::string& out, std::string_view key, std::string_view value);

}  // namespace posrelay::log
