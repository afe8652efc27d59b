// State file (read, atomic replace via temp file + fsync + rename, remove) and the reconnect
// backoff of terminal clients.
#include "tools/terminal_state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "posrelay/log.hpp"

namespace posrelay::tools {

namespace {

std::string errno_text(int err) {
    return std::strerror(err);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() &&
           (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
        s.remove_prefix(1);
    }
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

void write_all(int fd, std::string_view data, const std::string& path) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw state_error("cannot write " + path + ": " + errno_text(errno));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

std::string state_json(const terminal_state& s) {
    std::string out = s.epoch ? R"({"v":2,"terminal_id":")" : R"({"v":1,"terminal_id":")";
    log::append_json_escaped(out, s.terminal_id);
    out += R"(","store_id":")";
    log::append_json_escaped(out, s.store_id);
    out += R"(","last_seq":)";
    out += std::to_string(s.last_seq);
    if (s.epoch) {
        out += ',';
        log::append_json_member(out, "epoch", *s.epoch);
        out += ',';
        log::append_json_member(out, "eid", s.eid);
        out += R"(,"open":[)";
        for (std::size_t i = 0; i < s.open.size(); ++i) {
            if (i) out += ',';
            out += '"';
            log::append_json_escaped(out, s.open[i]);
            out += '"';
        }
        out += s.resync ? R"(],"resync":true)" : R"(],"resync":false)";
    }
    out += "}\n";
    return out;
}

terminal_state parse_state(std::string_view text) {
    text = trim(text);
    terminal_state s;
    if (!text.empty() && text.front() >= '0' && text.front() <= '9') {
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), s.last_seq);
        if (ec != std::errc{} || p != text.data() + text.size()) {
            throw state_error("not a number or a state object");
        }
        return s;
    }
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) throw state_error("not a number or a JSON object");
    const auto& o = v.get_object();
    const auto* seq = o.if_contains("last_seq");
    if (seq == nullptr) throw state_error("no last_seq");
    if (seq->is_uint64()) {
        s.last_seq = seq->get_uint64();
    } else if (seq->is_int64() && seq->get_int64() >= 0) {
        s.last_seq = static_cast<std::uint64_t>(seq->get_int64());
    } else {
        throw state_error("last_seq is not a non-negative integer");
    }
    for (auto [key, field] :
         {std::pair{"terminal_id", &s.terminal_id}, std::pair{"store_id", &s.store_id}}) {
        const auto* f = o.if_contains(key);
        if (f == nullptr) continue;
        if (!f->is_string()) throw state_error(std::string(key) + " is not a string");
        *field = std::string(f->get_string());
    }
    if (const auto* e = o.if_contains("epoch"); e != nullptr && e->is_string()) {
        s.epoch = std::string(e->get_string());
        if (const auto* eid = o.if_contains("eid"); eid != nullptr && eid->is_string())
            s.eid = std::string(eid->get_string());
        if (const auto* open = o.if_contains("open"); open != nullptr && open->is_array()) {
            for (const auto& id : open->get_array()) {
                if (id.is_string() && s.open.size() < max_open_orders)
                    s.open.emplace_back(id.get_string());
            }
        }
        if (const auto* r = o.if_contains("resync"); r != nullptr && r->is_bool())
            s.resync = r->get_bool();
    }
    return s;
}

std::optional<std::uint64_t> read_state_file(const std::string& path, std::string_view terminal_id,
                                             std::string_view store_id) {
    const auto s = read_state(path, terminal_id, store_id);
    if (!s) return std::nullopt;
    return s->last_seq;
}

std::optional<terminal_state> read_state(const std::string& path, std::string_view terminal_id,
                                         std::string_view store_id) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw state_error("cannot read state file " + path + ": " + errno_text(errno));
    }
    std::string text;
    char chunk[4096];
    for (;;) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            throw state_error("cannot read state file " + path + ": " + errno_text(err));
        }
        if (n == 0) break;
        text.append(chunk, static_cast<std::size_t>(n));
        if (text.size() > 64 * 1024) {
            ::close(fd);
            throw state_error("state file " + path + " is too large");
        }
    }
    ::close(fd);
    terminal_state s;
    try {
        s = parse_state(text);
    } catch (const state_error& e) {
        throw state_error("state file " + path + ": " + e.what());
    }
    if (!s.terminal_id.empty() && s.terminal_id != terminal_id) {
        throw state_error("state file " + path + " belongs to terminal " + s.terminal_id);
    }
    if (!s.store_id.empty() && s.store_id != store_id) {
        throw state_error("state file " + path + " belongs to store " + s.store_id);
    }
    return s;
}

void write_state_file(const std::string& path, const terminal_state& s) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw state_error("cannot create " + tmp + ": " + errno_text(errno));
    try {
        write_all(fd, state_json(s), tmp);
        if (::fsync(fd) != 0) throw state_error("cannot fsync " + tmp + ": " + errno_text(errno));
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::close(fd) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw state_error("cannot close " + tmp + ": " + errno_text(err));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw state_error("cannot rename " + tmp + " to " + path + ": " + errno_text(err));
    }
}

void remove_state_file(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throw state_error("cannot remove state file " + path + ": " + errno_text(errno));
    }
}

backoff::backoff(std::chrono::milliseconds min, std::chrono::milliseconds max)
    : min_(std::max(min, std::chrono::milliseconds(1))), max_(std::max(max, min_)) {}

std::chrono::milliseconds backoff::ceiling(unsigned n) const noexcept {
    auto d = min_;
    for (unsigned i = 0; i < n && d < max_; ++i)
        d *= 2;
    return std::min(d, max_);
}

std::chrono::milliseconds backoff::next(std::uint64_t random) noexcept {
    const auto d = ceiling(attempt_).count();
    if (attempt_ < 64) ++attempt_;
    const auto half = d / 2;
    const auto span = static_cast<std::uint64_t>(d - half) + 1;  // [half, d]
    return std::chrono::milliseconds(half + static_cast<std::int64_t>(random % span));
}

std::chrono::milliseconds goaway_delay(std::chrono::milliseconds reconnect_after,
                                       std::uint64_t random) noexcept {
    const auto base = std::max<std::int64_t>(reconnect_after.count(), 0);
    const auto span = static_cast<std::uint64_t>(base) + 1;  // [base, 2 * base]
    return std::chrono::milliseconds(base + static_cast<std::int64_t>(random % span));
}

}  // namespace posrelay::tools
