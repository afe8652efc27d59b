// libFuzzer target for the terminal frame parser: any bytes go through frame_parser, and
// what it accepts is checked against the protocol's promises. Crashes, sanitizer reports
// and broken invariants are findings.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "posrelay/fanout/protocol.hpp"

namespace {

using namespace posrelay::fanout;

// Small enough that frames past it (frame_too_large) are reached too.
constexpr std::size_t fuzz_max_frame = 2048;

void check(bool invariant) {
    if (!invariant) __builtin_trap();
}

bool is_request_op(std::string_view op) {
    for (const auto r : request_ops) {
        if (r == op) return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static frame_parser parser{fuzz_max_frame};

    // A fresh padded copy: simdjson reads up to SIMDJSON_PADDING bytes past the end.
    const simdjson::padded_string frame{reinterpret_cast<const char*>(data), size};
    client_frame out;
    parse_failure err;
    if (!parser.parse(frame, out, err)) {
        check(!err.message.empty());
        check(size <= fuzz_max_frame || err.code == errc::frame_too_large);
        check(err.code == errc::bad_frame || err.code == errc::frame_too_large ||
              err.code == errc::unknown_op || err.code == errc::unsupported_version);
        // An error frame built from any failure is one line.
        const std::string e = error_frame(err.code, err.message, true);
        check(e.find('\n') == e.size() - 1);
        return 0;
    }
    check(size <= fuzz_max_frame);
    switch (out.kind) {
        case frame_kind::hello:
            check(out.hello.version == protocol_version);
            check(valid_id(out.hello.terminal_id) && valid_id(out.hello.store_id));
            check(out.hello.token.size() <= 2048);  // protocol_parser.cpp max_token_bytes (a JWT)
            (void)verify_token("fuzz-secret", out.hello.terminal_id, out.hello.store_id,
                               out.hello.token);
            break;
        case frame_kind::ack:
            break;
        case frame_kind::ping: {
            check(out.ping.id.size() <= 64);
            const std::string pong = pong_frame_for(out.ping.id);
            check(pong.find('\n') == pong.size() - 1);
            break;
        }
        case frame_kind::pong:
            break;
        case frame_kind::request:
            check(is_request_op(out.request.op));
            check(out.request.id.size() <= 64);
            check(out.request.json == std::string_view(reinterpret_cast<const char*>(data), size));
            break;
    }
    return 0;
}
