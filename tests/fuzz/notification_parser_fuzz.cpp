// libFuzzer target for the webhook body parser: any bytes go through parse, and a parsed
// update through verify. Crashes, sanitizer reports and broken invariants are findings.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "posrelay/ingest/notification_parser.hpp"
#include "posrelay/ingest/notification_verifier.hpp"

namespace {

using namespace posrelay::ingest;

// Small enough that bodies past it (body_too_large) are reached too.
constexpr std::size_t fuzz_max_body = 4000;
// The corpus is signed with this key for merchant G000000001 and the default key.
constexpr const char* fuzz_key = "fuzz-server-key";

void check(bool invariant) {
    if (!invariant) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static notification_parser parser{fuzz_max_body};
    static const notification_verifier verifier{fuzz_key, {{"G000000001", fuzz_key}}};

    // A fresh padded copy: simdjson reads up to SIMDJSON_PADDING bytes past the end.
    const simdjson::padded_string body{reinterpret_cast<const char*>(data), size};
    status_update u;
    const parse_error err = parser.parse(body, u);
    if (err) {
        check(!err.message.empty());
        check(size <= fuzz_max_body || err.code == parse_errc::body_too_large);
        return 0;
    }
    // What the parser promises of an accepted body.
    check(size <= fuzz_max_body);
    for (const auto f : {field::order_id, field::status_code, field::gross_amount,
                         field::signature_key, field::transaction_status}) {
        check(u.has(f) && !u.get(f).empty() && u.get(f).size() <= max_field_bytes);
    }
    check(posrelay::midtrans::to_string(u.status) == u.get(field::transaction_status));
    check(u.fraud.has_value() == u.has(field::fraud_status));
    if (u.fraud) check(posrelay::midtrans::to_string(*u.fraud) == u.get(field::fraud_status));
    (void)verifier.verify(u);
    return 0;
}
