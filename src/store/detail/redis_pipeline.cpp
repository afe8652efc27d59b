// Sans-io Redis pipeline: commands are written as RESP here, replies are parsed by hiredis's
// redisReader; this file keeps the reply FIFO and the timeout bookkeeping.
#include "redis_pipeline.hpp"

#include <hiredis/hiredis.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <string_view>

namespace posrelay::store::detail {

namespace {

// Deep-copies a hiredis reply into an owned redis_reply.
redis_reply convert(const redisReply& r) {
    redis_reply out;
    switch (r.type) {
        case REDIS_REPLY_STRING:
            out.type = redis_reply::kind::string;
            out.str.assign(r.str, r.len);
            break;
        case REDIS_REPLY_STATUS:
            out.type = redis_reply::kind::status;
            out.str.assign(r.str, r.len);
            break;
        case REDIS_REPLY_ERROR:
            out.type = redis_reply::kind::error;
            out.str.assign(r.str, r.len);
            break;
        case REDIS_REPLY_INTEGER:
            out.type = redis_reply::kind::integer;
            out.integer = r.integer;
            break;
        case REDIS_REPLY_ARRAY:
            out.type = redis_reply::kind::array;
            out.elements.reserve(r.elements);
            for (std::size_t i = 0; i < r.elements; ++i)
                out.elements.push_back(convert(*r.element[i]));
            break;
        default:  // REDIS_REPLY_NIL (a nil bulk string or a nil array)
            out.type = redis_reply::kind::nil;
            break;
    }
    return out;
}

// Appends "<kind><n>\r\n".
void append_resp_header(std::string& out, char kind, std::size_t n) {
    std::array<char, 24> buf{};
    buf[0] = kind;
    const auto r = std::to_chars(buf.data() + 1, buf.data() + buf.size() - 2, n);
    char* end = r.ptr;
    *end++ = '\r';
    *end++ = '\n';
    out.append(buf.data(), static_cast<std::size_t>(end - buf.data()));
}

// A pub/sub message pushed to a subscribed connection: ["message", channel, payload] or
// ["pmessage", pattern, channel, payload]. Replies to SUBSCRIBE or PING are not messages.
bool is_message(const redisReply& r) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements < 3) return false;
    const redisReply& kind = *r.element[0];
    if (kind.type != REDIS_REPLY_STRING) return false;
    const std::string_view k(kind.str, kind.len);
    return (k == "message" && r.elements == 3) || (k == "pmessage" && r.elements == 4);
}

struct reply_deleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};

}  // namespace

void redis_pipeline::reader_deleter::operator()(redisReader* r) const noexcept {
    redisReaderFree(r);
}

redis_pipeline::redis_pipeline(std::size_t max_pending, redis_clock::duration command_timeout)
    : max_pending_(max_pending), timeout_(command_timeout), reader_(redisReaderCreate()) {
    if (!reader_) throw std::bad_alloc();
}

redis_pipeline::~redis_pipeline() = default;

boost::system::error_code redis_pipeline::push(const std::vector<std::string>& args,
                                               redis_handler&& h, redis_clock::time_point now) {
    if (args.empty()) return redis_errc::protocol_error;
    if (entries_.size() >= max_pending_) return redis_errc::queue_full;
    // RESP: *N CRLF, then $LEN CRLF DATA CRLF per argument, written straight into the output
    // (redisFormatCommandArgv would allocate and printf each length, then be copied here).
    append_resp_header(output_, '*', args.size());
    for (const auto& a : args) {
        append_resp_header(output_, '$', a.size());
        output_.append(a);
        output_.append("\r\n", 2);
    }
    entries_.push_back(entry{std::move(h), now});
    return {};
}

void redis_pipeline::take_output(std::string& out) {
    out.clear();
    out.swap(output_);
}

boost::system::error_code redis_pipeline::feed(const char* data, std::size_t n,
                                               redis_clock::time_point now,
                                               std::vector<redis_completion>& done,
                                               std::vector<redis_reply>* pushes) {
    if (redisReaderFeed(reader_.get(), data, n) != REDIS_OK) return redis_errc::protocol_error;
    for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) return redis_errc::protocol_error;
        if (raw == nullptr) return {};  // need more bytes
        const std::unique_ptr<redisReply, reply_deleter> reply(static_cast<redisReply*>(raw));
        if (pushes != nullptr && is_message(*reply)) {
            pushes->push_back(convert(*reply));
            continue;
        }
        if (entries_.empty()) return redis_errc::protocol_error;  // nobody asked for it
        entry e = std::move(entries_.front());
        entries_.pop_front();
        if (expired_ > 0) {
            --expired_;  // its caller already got `timeout`: a late reply is dropped
            continue;
        }
        done.push_back(
            redis_completion{std::move(e.handler), {}, convert(*reply), now - e.enqueued});
    }
}

void redis_pipeline::expire(redis_clock::time_point now, std::vector<redis_completion>& done) {
    while (expired_ < entries_.size() && entries_[expired_].enqueued + timeout_ <= now) {
        done.push_back(
            redis_completion{std::move(entries_[expired_].handler), redis_errc::timeout, {}, {}});
        ++expired_;
    }
}

bool redis_pipeline::dead(redis_clock::time_point now) const noexcept {
    return !entries_.empty() && now - entries_.front().enqueued >= 2 * timeout_;
}

redis_clock::time_point redis_pipeline::next_deadline() const noexcept {
    if (entries_.empty()) return redis_clock::time_point::max();
    const auto dead_at = entries_.front().enqueued + 2 * timeout_;
    if (expired_ < entries_.size())
        return std::min(dead_at, entries_[expired_].enqueued + timeout_);
    return dead_at;
}

void redis_pipeline::fail_all(boost::system::error_code ec, std::vector<redis_completion>& done) {
    for (std::size_t i = expired_; i < entries_.size(); ++i)
        done.push_back(redis_completion{std::move(entries_[i].handler), ec, {}, {}});
    entries_.clear();
    expired_ = 0;
    output_.clear();
}

}  // namespace posrelay::store::detail
