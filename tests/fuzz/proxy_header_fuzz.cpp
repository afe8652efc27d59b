// libFuzzer target for the PROXY protocol parser and the listener's preamble decision, with
// the X-Forwarded-For walk on the same bytes. Any bytes go in; crashes, sanitizer reports and
// broken promises (sizes within the limits, prefixes asking for more) are findings.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "posrelay/net/forwarded_for.hpp"
#include "posrelay/net/proxy_protocol.hpp"

namespace {

using namespace posrelay::net;

void check(bool invariant) {
    if (!invariant) __builtin_trap();
}

const cidr_set& trusted() {
    static const cidr_set s = parse_cidr_list("10.0.0.0/8,127.0.0.1/32,::1/128");
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto p = parse_proxy_header(bytes);
    if (p.status == proxy_status::done) {
        check(p.size <= bytes.size());
        check(p.size <= (p.header.version == 1 ? proxy_v1_max_bytes : proxy_max_bytes));
        // A complete header parses the same with nothing after it, and every proper prefix
        // of it asks for more.
        const auto again = parse_proxy_header(bytes.substr(0, p.size));
        check(again.status == proxy_status::done && again.size == p.size);
        check(parse_proxy_header(bytes.substr(0, p.size - 1)).status == proxy_status::need_more);
    }
    if (p.status == proxy_status::need_more) check(bytes.size() < proxy_max_bytes);
    if (p.status == proxy_status::invalid) check(!p.error.empty());
    for (const bool peer_trusted : {true, false}) {
        const auto d = decide_preamble(bytes, peer_trusted);
        check(d.consumed <= bytes.size());
        check((d.action == preamble_action::refuse) == !d.reason.empty());
    }
    (void)client_from_forwarded_for(bytes, trusted());
    return 0;
}
