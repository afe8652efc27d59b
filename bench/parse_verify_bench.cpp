// Micro-benchmarks of the notification hot path: parse + verify of one typical signed
// notification (the shape of shared/bench/gen_notifications.py), and SHA-512 alone.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "posrelay/ingest/notification_parser.hpp"
#include "posrelay/ingest/notification_verifier.hpp"
#include "posrelay/midtrans/signature.hpp"

namespace {

using namespace posrelay;

constexpr std::string_view server_key = "SB-Mid-server-GwUP_WGbJPXsDzsNEBRs8IYA";
constexpr std::string_view order_id = "ORD-000000001";
constexpr std::string_view status_code = "200";
constexpr std::string_view gross_amount = "2417000.00";

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "parse_verify_bench: %s\n", what);
    std::abort();
}

// One body as gen_notifications.py writes it (compact JSON, same keys in the same order).
std::string typical_body() {
    const auto sig = midtrans::compute_signature(order_id, status_code, gross_amount, server_key);
    std::string body;
    body += R"({"transaction_time":"2026-11-24 10:00:00","transaction_status":"settlement",)";
    body += R"("transaction_id":"00000001-2a48-47a9-8cb1-fb36060b88f3",)";
    body += R"("status_message":"midtrans payment notification","status_code":")";
    body += status_code;
    body += R"(","signature_key":")";
    body.append(sig.data(), sig.size());
    body += R"(","settlement_time":"2026-11-24 10:00:09","payment_type":"gopay","order_id":")";
    body += order_id;
    body += R"(","merchant_id":"G000000001","gross_amount":")";
    body += gross_amount;
    body += R"(","fraud_status":"accept","currency":"IDR"})";
    return body;
}

void parse_and_verify(benchmark::State& state) {
    const simdjson::padded_string body{typical_body()};
    ingest::notification_parser parser{64 * 1024};
    const ingest::notification_verifier verifier{std::string{server_key}, {}};
    ingest::status_update u;
    for (auto _ : state) {
        // Every iteration checks its own result: a benchmark of a failing parse is worthless.
        if (const auto err = parser.parse(body, u)) fail(err.message.c_str());
        if (verifier.verify(u) != ingest::verify_result::ok) fail("signature does not verify");
        benchmark::DoNotOptimize(u);
    }
    if (u.order_id() != order_id || !u.paid()) fail("unexpected parse result");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(body.size()));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(parse_and_verify);

void parse_only(benchmark::State& state) {
    const simdjson::padded_string body{typical_body()};
    ingest::notification_parser parser{64 * 1024};
    ingest::status_update u;
    for (auto _ : state) {
        if (const auto err = parser.parse(body, u)) fail(err.message.c_str());
        benchmark::DoNotOptimize(u);
    }
    if (u.order_id() != order_id) fail("unexpected parse result");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(parse_only);

void sha512_signature(benchmark::State& state) {
    const auto expected =
        midtrans::compute_signature(order_id, status_code, gross_amount, server_key);
    for (auto _ : state) {
        auto sig = midtrans::compute_signature(order_id, status_code, gross_amount, server_key);
        benchmark::DoNotOptimize(sig);
        if (sig != expected) fail("signature is not deterministic");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(sha512_signature);

}  // namespace

BENCHMARK_MAIN();
