// Structured JSON-lines logging: builds each line in a buffer and writes it with one
// write(2), so concurrent lines never interleave; strings are escaped to valid UTF-8 JSON.
#include "posrelay/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <ctime>

namespace posrelay::log {

namespace {

std::atomic<level> min_level{level::info};
std::atomic<int> out_fd{2};

// "2026-11-24T05:00:00.123Z": RFC 3339, UTC, milliseconds.
void append_timestamp(std::string& out) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    tm utc{};
    ::gmtime_r(&now.tv_sec, &utc);
    char buf[32];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
    out.append(buf, n);
    const auto ms = static_cast<int>(now.tv_nsec / 1'000'000);
    out += '.';
    out += static_cast<char>('0' + ms / 100);
    out += static_cast<char>('0' + ms / 10 % 10);
    out += static_cast<char>('0' + ms % 10);
    out += 'Z';
}

// Writes all of `s`, retrying on EINTR and short writes. A failing stderr is ignored:
// there is nowhere left to report it.
void write_all(int fd, std::string_view s) noexcept {
    const char* p = s.data();
    std::size_t left = s.size();
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

void append_key(std::string& out, std::string_view key) {
    out += ",\"";
    append_json_escaped(out, key);
    out += "\":";
}

constexpr char hex_digits[] = "0123456789abcdef";

// Length of the well-formed UTF-8 sequence at the start of `s` (Unicode Table 3-7: no
// overlongs, no surrogates, nothing above U+10FFFF), or 0 with `*bad` set to the length
// of the maximal ill-formed prefix to replace with one U+FFFD (at least 1).
std::size_t utf8_sequence(std::string_view s, std::size_t* bad) noexcept {
    const auto b0 = static_cast<unsigned char>(s[0]);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;  // overlong
        if (b0 == 0xED) hi = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;  // overlong
        if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
        *bad = 1;  // continuation byte, C0/C1 (overlong) or F5..FF
        return 0;
    }
    for (std::size_t i = 1; i < len; ++i) {
        if (i >= s.size()) {
            *bad = i;  // truncated
            return 0;
        }
        const auto b = static_cast<unsigned char>(s[i]);
        const unsigned char min = i == 1 ? lo : 0x80;
        const unsigned char max = i == 1 ? hi : 0xBF;
        if (b < min || b > max) {
            *bad = i;
            return 0;
        }
    }
    return len;
}

}  // namespace

std::optional<level> parse_level(std::string_view s) noexcept {
    if (s == "debug") return level::debug;
    if (s == "info") return level::info;
    if (s == "warn") return level::warn;
    if (s == "error") return level::error;
    return std::nullopt;
}

std::string_view to_string(level l) noexcept {
    switch (l) {
        case level::debug:
            return "debug";
        case level::info:
            return "info";
        case level::warn:
            return "warn";
        case level::error:
            return "error";
    }
    return "unknown";
}

void set_level(level l) noexcept {
    min_level.store(l, std::memory_order_relaxed);
}

bool enabled(level l) noexcept {
    return l >= min_level.load(std::memory_order_relaxed);
}

void set_fd(int fd) noexcept {
    out_fd.store(fd, std::memory_order_relaxed);
}

void append_json_escaped(std::string& out, std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::size_t bad = 0;
            if (const auto len = utf8_sequence(s.substr(i), &bad); len > 0) {
                out.append(s.data() + i, len);
                i += len;
            } else {
                out += "\\ufffd";
                i += bad;
            }
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20 || c == 0x7F) {  // other control characters, DEL included
                    out += "\\u00";
                    out += hex_digits[c >> 4];
                    out += hex_digits[c & 0xF];
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
}

void append_json_member(std::string& out, std::string_view key, std::string_view value) {
    out += '"';
    append_json_escaped(out, key);
    out += "\":\"";
    append_json_escaped(out, value);
    out += '"';
}

line::line(level l, std::string_view msg) : on_(enabled(l)) {
    if (!on_) return;
    buf_.reserve(256);
    buf_ += "{\"ts\":\"";
    append_timestamp(buf_);
    buf_ += "\",\"level\":\"";
    buf_ += to_string(l);
    buf_ += "\",\"msg\":\"";
    append_json_escaped(buf_, msg);
    buf_ += '"';
}

line::~line() {
    if (!on_) return;
    try {
        buf_ += "}\n";
    } catch (...) {
        return;  // out of memory: drop the line rather than terminate
    }
    write_all(out_fd.load(std::memory_order_relaxed), buf_);
}

line& line::str(std::string_view key, std::string_view value) {
    if (!on_) return *this;
    buf_ += ',';
    append_json_member(buf_, key, value);
    return *this;
}

line& line::num(std::string_view key, std::int64_t value) {
    if (!on_) return *this;
    append_key(buf_, key);
    char tmp[24];
    const auto r = std::to_chars(tmp, tmp + sizeof tmp, value);
    buf_.append(tmp, r.ptr);
    return *this;
}

line& line::dbl(std::string_view key, double value) {
    if (!on_) return *this;
    append_key(buf_, key);
    if (!std::isfinite(value)) {
        buf_ += "null";  // JSON has no NaN or infinity
        return *this;
    }
    char tmp[32];
    const auto r = std::to_chars(tmp, tmp + sizeof tmp, value);
    buf_.append(tmp, r.ptr);
    return *this;
}

line& line::boolean(std::string_view key, bool value) {
    if (!on_) return *this;
    append_key(buf_, key);
    buf_ += value ? "true" : "false";
    return *this;
}

void escaped(std::exception_ptr e, std::string_view what) noexcept {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        line(level::error, "coroutine failed").str("what", what).str("error", ex.what());
    } catch (...) {
        line(level::error, "coroutine failed").str("what", what).str("error", "unknown exception");
    }
}

}  // namespace posrelay::log
