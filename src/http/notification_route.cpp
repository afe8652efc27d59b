// The Midtrans notification endpoint: the ingest pipeline's HTTP face.
#include "posrelay/http/notification_route.hpp"

#include <boost/beast/http/field.hpp>

#include <chrono>
#include <cmath>

#include "posrelay/ingest/notification_rules.hpp"
#include "posrelay/log.hpp"
#include "posrelay/store/redis_connection.hpp"

namespace posrelay::http {

namespace {
// Every reason a notification can be refused, registered up front so dashboards see zeros.
// clang-format off
constexpr std::string_view rejection_reasons[] = {
    "method_not_allowed",   "unsupported_media_type", "body_too_large",
    "bad_request",          "header_too_large",       "invalid_utf8",
    "malformed_json",       "not_an_object",          "missing_field",
    "wrong_type",           "invalid_value",          "duplicate_field",
    "bad_signature",        "unknown_merchant",       "store_unavailable",
    "inconsistent_status",  "merchant_mismatch",      "amount_mismatch",
    "transaction_mismatch",
    "replicas_not_acknowledged",  // stored on the primary, not yet on enough replicas (503)
};
// clang-format on

// The answer to an update the store refused as bound elsewhere (issue 13): another
// merchant's key is not a valid signature for the order (401, like a bad signature);
// another amount or transaction conflicts with the order (409; Midtrans retries it for
// hours, time for an operator to look).
struct refusal {
    unsigned status;
    std::string_view field, message;
};
refusal refusal_of(ingest::binding_mismatch m) {
    switch (m) {
        case ingest::binding_mismatch::merchant:
            return {401, "merchant_id", "the order belongs to another merchant's server key"};
        case ingest::binding_mismatch::amount:
            return {409, "gross_amount", "gross_amount differs from the order's amount"};
        default:
            return {409, "transaction_id",
                    "transaction_id differs from the order's transaction (order_id reused)"};
    }
}

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

notification_route::notification_route(std::size_t threads, std::size_t max_body_bytes,
                                       const ingest::verifier_slot& verifier,
                                       ingest::commit_sink& sink, metrics::registry& reg)
    : verifier_(verifier), sink_(sink), registry_(reg) {
    for (std::size_t i = 0; i < threads; ++i) {
        parsers_.push_back(std::make_unique<ingest::notification_parser>(max_body_bytes));
    }
    for (auto o : {ingest::commit_outcome::new_update, ingest::commit_outcome::duplicate,
                   ingest::commit_outcome::stale, ingest::commit_outcome::confirming}) {
        accepted_[static_cast<int>(o)] = &reg.add_counter(
            "posrelay_notifications_accepted_total",
            "Verified notifications answered 200, by commit outcome (new, duplicate, stale, "
            "confirming: held until Midtrans confirms whether the order is paid).",
            {{"outcome", std::string(ingest::to_string(o))}});
    }
    for (auto reason : rejection_reasons) {
        rejected_.emplace_back(std::string(reason),
                               &reg.add_counter("posrelay_notifications_rejected_total",
                                                "Notifications refused, by reason.",
                                                {{"reason", std::string(reason)}}));
    }
}

void notification_route::count_rejection(std::string_view reason) {
    for (auto& [name, c] : rejected_) {
        if (name == reason) {
            c->inc();
            return;
        }
    }
}

response notification_route::reject(unsigned status, std::string_view reason,
                                    std::string_view message, std::string_view field,
                                    std::string_view order_id, const request_context& ctx,
                                    bool security) {
    count_rejection(reason);
    if (log::enabled(log::level::warn)) {
        log::line l(log::level::warn, "notification rejected");
        // A well-formed body that lies (forged, edited, replayed elsewhere): for alerting.
        if (security) l.boolean("security", true);
        l.str("reason", reason).num("status", status).str("detail", message);
        if (!field.empty()) l.str("field", field);
        if (!order_id.empty()) l.str("order_id", order_id);
        l.str("remote", ctx.remote);
    }
    return json_error(status, reason, message, field);
}

// The signed fields exactly as Midtrans sends them and a status that agrees with the signed
// status_code (checked before the signature: no re-split or edited body is believed whatever
// key signed it), then the signature. Records whose key verified it (u.signer).
std::optional<response> notification_route::refuse_unbelieved(ingest::status_update& u,
                                                              const request_context& ctx) {
    if (auto err = ingest::check_update(u)) {
        return reject(400, ingest::to_string(err.code), err.message, ingest::field_name(err.where),
                      u.order_id(), ctx, true);
    }
    const auto verifier = verifier_.get();  // one key set for the whole request
    switch (verifier->verify(u)) {
        case ingest::verify_result::ok:
            break;
        case ingest::verify_result::bad_signature:
            return reject(401, "bad_signature", "signature_key does not match", "signature_key",
                          u.order_id(), ctx, true);
        case ingest::verify_result::unknown_merchant:
            return reject(401, "unknown_merchant", "no server key configured for this merchant_id",
                          "merchant_id", u.order_id(), ctx);
    }
    u.signer = verifier->signer_for(u.get(ingest::field::merchant_id));
    return std::nullopt;
}

boost::asio::awaitable<response> notification_route::handle(request& req,
                                                            const request_context& ctx) {
    const auto ct = req[beast_http::field::content_type];
    if (!is_json_content_type(std::string_view(ct.data(), ct.size()))) {
        co_return reject(415, "unsupported_media_type", "Content-Type must be application/json", {},
                         {}, ctx);
    }
    // simdjson reads up to SIMDJSON_PADDING bytes past the end: make room once, in place.
    std::string& body = req.body();
    body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
    ingest::status_update u;
    if (auto err = parsers_[ctx.thread_index]->parse(
            simdjson::padded_string_view(body.data(), body.size(), body.capacity()), u)) {
        const unsigned status = err.code == ingest::parse_errc::body_too_large ? 413 : 400;
        const std::string_view field =
            err.where ? ingest::field_name(*err.where) : std::string_view{};
        co_return reject(status, ingest::to_string(err.code), err.message, field, u.order_id(),
                         ctx);
    }
    if (auto refused = refuse_unbelieved(u, ctx)) co_return std::move(*refused);
    u.source = ingest::update_source::notification;
    u.received_unix_ms = unix_ms_now();
    const std::string order_id(u.order_id());
    // The audit line's fields, copied before the update moves into the commit.
    const bool audit = audit_ && log::enabled(log::level::info);
    std::string status, merchant;
    if (audit) {
        status = u.get(ingest::field::transaction_status);
        merchant = u.get(ingest::field::merchant_id);
    }
    const auto commit_start = std::chrono::steady_clock::now();
    const ingest::commit_result r = co_await sink_.commit(std::move(u));
    if (!r.ec && r.outcome == ingest::commit_outcome::refused) {
        const auto why = refusal_of(r.mismatch);
        co_return reject(why.status, ingest::to_string(r.mismatch), why.message, why.field,
                         order_id, ctx, true);
    }
    if (r.ec == store::redis_errc::replicas_not_acknowledged) {
        // Stored on the primary, not yet on enough replicas: a failover now could lose it, so
        // it is not acknowledged. Midtrans's retry is a duplicate, answered 200 once replicated.
        response res = reject(503, "replicas_not_acknowledged",
                              "the update is not yet on enough Redis replicas, retry later", {},
                              order_id, ctx);
        res.set(beast_http::field::retry_after, "30");
        co_return res;
    }
    if (r.ec) {
        // Not committed: not acknowledged. Midtrans retries a 503 (four times, hours apart).
        response res = reject(503, "store_unavailable",
                              "the order store is unavailable, retry later", {}, order_id, ctx);
        res.set(beast_http::field::retry_after, "30");
        co_return res;
    }
    accepted_[static_cast<int>(r.outcome)]->inc();
    if (audit) {
        const std::chrono::duration<double, std::milli> took =
            std::chrono::steady_clock::now() - commit_start;
        log::line(log::level::info, "notification")
            .str("order_id", order_id)
            .str("status", status)
            .str("outcome", ingest::to_string(r.outcome))
            .str("merchant", merchant)
            .dbl("commit_ms", std::round(took.count() * 1000) / 1000)  // to the microsecond
            .str("client", ctx.client)
            .str("remote", ctx.remote);
    }
    if (r.outcome == ingest::commit_outcome::confirming && on_confirming_) on_confirming_(order_id);
    static constexpr std::string_view accepted = R"({"status":"accepted"})";
    co_return json_response(200, std::string(accepted));
}

}  // namespace posrelay::http
