// Sans-io Redis pipeline: commands are written as RESP here, replies are parsed by hiredis's
// redisReader (into redis_reply directly); this file keeps the reply FIFO and the timeout
// bookkeeping.
#include "redis_pipeline.hpp"

#include <hiredis/hiredis.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <string_view>

namespace posrelay::store::detail {

namespace {

// hiredis's reader builds replies through these: straight into a redis_reply tree, instead of
// its own redisReply objects that would then be copied (two allocations and a free per
// element saved). The root is the pipeline's `building_` (the reader's privdata); an
// element lives in its array's `elements`, sized when the array was created, so the
// pointers the reader keeps for the parents stay valid.
redis_reply* slot(const redisReadTask* task) {
    if (task->parent == nullptr) {
        auto* root = static_cast<redis_reply*>(task->privdata);
        *root = redis_reply{};
        return root;
    }
    auto* parent = static_cast<redis_reply*>(task->parent->obj);
    return &parent->elements[static_cast<std::size_t>(task->idx)];
}

void* create_string(const redisReadTask* task, char* str, std::size_t len) noexcept {
    try {
        redis_reply* r = slot(task);
        r->type = task->type == REDIS_REPLY_ERROR    ? redis_reply::kind::error
                  : task->type == REDIS_REPLY_STATUS ? redis_reply::kind::status
                                                     : redis_reply::kind::string;
        r->str.assign(str, len);
        return r;
    } catch (...) {
        return nullptr;  // the reader reports out of memory: a protocol error here
    }
}

void* create_array(const redisReadTask* task, int elements) noexcept {
    try {
        redis_reply* r = slot(task);
        r->type = redis_reply::kind::array;
        r->elements.resize(static_cast<std::size_t>(elements));
        return r;
    } catch (...) {
        return nullptr;
    }
}

void* create_integer(const redisReadTask* task, long long value) noexcept {
    redis_reply* r = slot(task);
    r->type = redis_reply::kind::integer;
    r->integer = value;
    return r;
}

void* create_nil(const redisReadTask* task) noexcept {  // a nil bulk string or a nil array
    redis_reply* r = slot(task);
    r->type = redis_reply::kind::nil;
    return r;
}

void free_object(void*) noexcept {}  // the tree belongs to the pipeline

redisReplyObjectFunctions reply_functions = {create_string, create_array, create_integer,
                                             create_nil, free_object};

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

// A pub/sub message pushed to a subscribed connection: ["message", channel, payload],
// ["smessage", shard channel, payload] or ["pmessage", pattern, channel, payload]. Replies to
// SUBSCRIBE, SSUBSCRIBE or PING are not messages.
bool is_message(const redis_reply& r) {
    if (r.type != redis_reply::kind::array || r.elements.size() < 3) return false;
    const redis_reply& kind = r.elements[0];
    if (kind.type != redis_reply::kind::string) return false;
    return ((kind.str == "message" || kind.str == "smessage") && r.elements.size() == 3) ||
           (kind.str == "pmessage" && r.elements.size() == 4);
}

}  // namespace

void redis_pipeline::reader_deleter::operator()(redisReader* r) const noexcept {
    redisReaderFree(r);
}

redis_pipeline::redis_pipeline(std::size_t max_pending, redis_clock::duration command_timeout)
    : max_pending_(max_pending),
      timeout_(command_timeout),
      reader_(redisReaderCreateWithFunctions(&reply_functions)) {
    if (!reader_) throw std::bad_alloc();
    reader_->privdata = &building_;
}

redis_pipeline::~redis_pipeline() = default;

boost::system::error_code redis_pipeline::push(redis_args args, redis_handler&& h,
                                               redis_clock::time_point now) {
    if (args.empty()) return redis_errc::protocol_error;
    if (entries_.size() >= max_pending_) return redis_errc::queue_full;
    // RESP: *N CRLF, then $LEN CRLF DATA CRLF per argument, written straight into the output
    // (redisFormatCommandArgv would allocate and printf each length, then be copied here).
    append_resp_header(output_, '*', args.size());
    for (const std::string_view a : args) {
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
        if (raw == nullptr) return {};                                   // need more bytes
        redis_reply reply = std::move(*static_cast<redis_reply*>(raw));  // raw is &building_
        if (pushes != nullptr && is_message(reply)) {
            pushes->push_back(std::move(reply));
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
            redis_completion{std::move(e.handler), {}, std::move(reply), now - e.enqueued});
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
