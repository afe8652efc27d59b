// Tests of the notification body parser: the valid sample, every refusal reason, and
// hostile inputs (truncation at every length, bad UTF-8, deep nesting, duplicates, size).
#include "posrelay/ingest/notification_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace {

using namespace posrelay::ingest;
using posrelay::midtrans::fraud_status;
using posrelay::midtrans::transaction_status;

// The sample of gopay-qris-pos-integration.md, "Handle HTTP notification".
constexpr std::string_view sample = R"({
  "transaction_time": "2019-09-04 19:08:21",
  "transaction_status": "settlement",
  "transaction_id": "8b82e549-2a48-47a9-8cb1-fb36060b88f3",
  "status_message": "midtrans payment notification",
  "status_code": "200",
  "signature_key": "7b91a66336ab53c2ee197cf5d0e38fed014b1f94e617f4c5f6ca3b81800d9c783c570b972ed9ac190bcc08daac27ced4720e6dea9947c6826761972bc66e32f2",
  "settlement_time": "2019-09-04 19:08:37",
  "payment_type": "gopay",
  "order_id": "20190904190821463338875755684689",
  "gross_amount": "100.00",
  "fraud_status": "accept",
  "currency": "IDR"
})";

constexpr std::array<field, 5> required = {field::order_id, field::status_code, field::gross_amount,
                                           field::signature_key, field::transaction_status};

using members = std::vector<std::pair<std::string, std::string>>;  // key, raw JSON value

// The required fields with valid values, as raw JSON members.
members minimal() {
    return {{"order_id", R"("ORD-1")"},
            {"status_code", R"("200")"},
            {"gross_amount", R"("1000.00")"},
            {"signature_key", R"("abc")"},
            {"transaction_status", R"("settlement")"}};
}

std::string to_json(const members& m) {
    std::string out = "{";
    for (const auto& [key, value] : m) {
        if (out.size() > 1) out += ',';
        out += '"' + key + "\":" + value;
    }
    return out + '}';
}

members with(members m, const std::string& key, const std::string& value) {
    for (auto& [k, v] : m) {
        if (k == key) {
            v = value;
            return m;
        }
    }
    m.emplace_back(key, value);
    return m;
}

members without(members m, const std::string& key) {
    std::erase_if(m, [&](const auto& kv) { return kv.first == key; });
    return m;
}

class notification_parser_test : public ::testing::Test {
protected:
    parse_error parse(std::string_view body) {
        const simdjson::padded_string padded{body};
        return parser_.parse(padded, update_);
    }
    parse_errc code(std::string_view body) { return parse(body).code; }

    notification_parser parser_{64 * 1024};
    status_update update_;
};

TEST_F(notification_parser_test, parses_the_guide_sample) {
    const auto err = parse(sample);
    ASSERT_FALSE(err) << err.message;
    EXPECT_EQ(err.code, parse_errc::ok);
    EXPECT_EQ(update_.order_id(), "20190904190821463338875755684689");
    EXPECT_EQ(update_.get(field::status_code), "200");
    EXPECT_EQ(update_.get(field::gross_amount), "100.00");
    EXPECT_EQ(update_.get(field::signature_key),
              "7b91a66336ab53c2ee197cf5d0e38fed014b1f94e617f4c5f6ca3b81800d9c783c570b972ed9ac19"
              "0bcc08daac27ced4720e6dea9947c6826761972bc66e32f2");
    EXPECT_EQ(update_.get(field::transaction_status), "settlement");
    EXPECT_EQ(update_.get(field::fraud_status), "accept");
    EXPECT_EQ(update_.get(field::transaction_id), "8b82e549-2a48-47a9-8cb1-fb36060b88f3");
    EXPECT_EQ(update_.get(field::payment_type), "gopay");
    EXPECT_EQ(update_.get(field::transaction_time), "2019-09-04 19:08:21");
    EXPECT_EQ(update_.get(field::settlement_time), "2019-09-04 19:08:37");
    EXPECT_EQ(update_.get(field::status_message), "midtrans payment notification");
    EXPECT_EQ(update_.get(field::currency), "IDR");
    EXPECT_FALSE(update_.has(field::merchant_id));
    EXPECT_FALSE(update_.has(field::expiry_time));
    EXPECT_EQ(update_.status, transaction_status::settlement);
    EXPECT_EQ(update_.fraud, fraud_status::accept);
    EXPECT_EQ(update_.source, update_source::notification);
    EXPECT_TRUE(update_.paid());
}

TEST_F(notification_parser_test, minimal_notification_has_no_fraud_status) {
    ASSERT_EQ(code(to_json(minimal())), parse_errc::ok);
    EXPECT_FALSE(update_.fraud.has_value());
    EXPECT_FALSE(update_.has(field::fraud_status));
    EXPECT_TRUE(update_.paid());
}

TEST_F(notification_parser_test, each_required_field_missing) {
    for (const auto f : required) {
        const std::string name{field_name(f)};
        const auto err = parse(to_json(without(minimal(), name)));
        EXPECT_EQ(err.code, parse_errc::missing_field) << name;
        EXPECT_EQ(err.where, f) << name;
        EXPECT_EQ(err.message, name + " is required");
    }
}

TEST_F(notification_parser_test, each_required_field_of_each_wrong_type) {
    for (const auto f : required) {
        const std::string name{field_name(f)};
        for (const std::string value :
             {"200", "200.5", "null", "true", "false", R"({"a":"b"})", "{}", R"(["200"])", "[]"}) {
            const auto err = parse(to_json(with(minimal(), name, value)));
            EXPECT_EQ(err.code, parse_errc::wrong_type) << name << " = " << value;
            EXPECT_EQ(err.where, f) << name;
            EXPECT_EQ(err.message, name + " must be a string");
        }
    }
}

TEST_F(notification_parser_test, required_fields_must_not_be_empty) {
    for (const auto f : required) {
        const std::string name{field_name(f)};
        const auto err = parse(to_json(with(minimal(), name, R"("")")));
        EXPECT_EQ(err.code, parse_errc::invalid_value) << name;
        EXPECT_EQ(err.where, f);
        EXPECT_EQ(err.message, name + " must not be empty");
    }
    // Optional fields may be empty strings.
    EXPECT_EQ(code(to_json(with(minimal(), "merchant_id", R"("")"))), parse_errc::ok);
    EXPECT_TRUE(update_.has(field::merchant_id));
    EXPECT_EQ(update_.get(field::merchant_id), "");
}

TEST_F(notification_parser_test, values_longer_than_the_field_limit) {
    const std::string at_limit(max_field_bytes, 'x');
    const std::string over_limit(max_field_bytes + 1, 'x');
    EXPECT_EQ(code(to_json(with(minimal(), "order_id", '"' + at_limit + '"'))), parse_errc::ok);
    EXPECT_EQ(update_.order_id().size(), max_field_bytes);
    const auto err = parse(to_json(with(minimal(), "order_id", '"' + over_limit + '"')));
    EXPECT_EQ(err.code, parse_errc::invalid_value);
    EXPECT_EQ(err.where, field::order_id);
    EXPECT_EQ(code(to_json(with(minimal(), "status_message", '"' + over_limit + '"'))),
              parse_errc::invalid_value);
    // The limit is on the unescaped value: 1024 escaped characters are 1024 bytes.
    std::string escaped;
    for (std::size_t i = 0; i < max_field_bytes; ++i)
        escaped += "\\u0041";
    EXPECT_EQ(code(to_json(with(minimal(), "order_id", '"' + escaped + '"'))), parse_errc::ok);
    // Unknown fields are bounded only by the body size.
    EXPECT_EQ(code(to_json(with(minimal(), "note", '"' + std::string(10000, 'y') + '"'))),
              parse_errc::ok);
}

TEST_F(notification_parser_test, optional_fields_null_is_absent_other_types_are_refused) {
    auto m = with(minimal(), "fraud_status", "null");
    m = with(m, "merchant_id", "null");
    ASSERT_EQ(code(to_json(m)), parse_errc::ok);
    EXPECT_FALSE(update_.fraud.has_value());
    EXPECT_FALSE(update_.has(field::fraud_status));
    EXPECT_FALSE(update_.has(field::merchant_id));
    for (const std::string value : {"1", "true", "{}", "[]"}) {
        const auto err = parse(to_json(with(minimal(), "merchant_id", value)));
        EXPECT_EQ(err.code, parse_errc::wrong_type) << value;
        EXPECT_EQ(err.where, field::merchant_id);
        EXPECT_EQ(err.message, "merchant_id must be a string");
    }
}

TEST_F(notification_parser_test, fraud_status_values) {
    for (const auto& [raw, expected] : std::vector<std::pair<std::string, fraud_status>>{
             {R"("accept")", fraud_status::accept},
             {R"("deny")", fraud_status::deny},
             {R"("challenge")", fraud_status::challenge}}) {
        ASSERT_EQ(code(to_json(with(minimal(), "fraud_status", raw))), parse_errc::ok) << raw;
        EXPECT_EQ(update_.fraud, expected);
    }
    for (const std::string bad : {R"("")", R"("Accept")", R"("ok")", R"("accept ")"}) {
        const auto err = parse(to_json(with(minimal(), "fraud_status", bad)));
        EXPECT_EQ(err.code, parse_errc::invalid_value) << bad;
        EXPECT_EQ(err.where, field::fraud_status);
    }
}

TEST_F(notification_parser_test, every_documented_transaction_status_parses) {
    for (const auto s : posrelay::midtrans::all_transaction_statuses()) {
        const std::string raw = '"' + std::string{to_string(s)} + '"';
        ASSERT_EQ(code(to_json(with(minimal(), "transaction_status", raw))), parse_errc::ok);
        EXPECT_EQ(update_.status, s);
    }
}

TEST_F(notification_parser_test, unknown_transaction_status_is_invalid_value) {
    for (const std::string bad :
         {R"("paid")", R"("Settlement")", R"("settlement ")", R"("s3cr3t-status-value")"}) {
        const auto err = parse(to_json(with(minimal(), "transaction_status", bad)));
        EXPECT_EQ(err.code, parse_errc::invalid_value) << bad;
        EXPECT_EQ(err.where, field::transaction_status);
        // The message names the field, never echoes the value.
        EXPECT_EQ(err.message.find("s3cr3t"), std::string::npos);
        EXPECT_NE(err.message.find("transaction_status"), std::string::npos);
    }
}

TEST_F(notification_parser_test, every_truncation_is_an_error) {
    const std::string body = to_json(with(with(minimal(), "fraud_status", R"("accept")"), "va",
                                          R"([{"bank":"bca","n":[1,2.5e3,true,null]}])"));
    ASSERT_EQ(code(body), parse_errc::ok);
    for (std::size_t n = 0; n < body.size(); ++n) {
        const auto err = parse(std::string_view{body}.substr(0, n));
        EXPECT_EQ(err.code, parse_errc::malformed_json) << n << ": " << body.substr(0, n);
    }
    // The pretty-printed sample too (its prefixes end in whitespace as well).
    for (std::size_t n = 0; n < sample.size(); ++n) {
        EXPECT_EQ(code(sample.substr(0, n)), parse_errc::malformed_json) << n;
    }
}

TEST_F(notification_parser_test, non_utf8_bytes_are_refused) {
    for (const std::string bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "ORD\x80"}) {
        const auto in_known = to_json(with(minimal(), "order_id", '"' + bad + '"'));
        EXPECT_EQ(code(in_known), parse_errc::invalid_utf8);
        const auto in_unknown = to_json(with(minimal(), "note", '"' + bad + '"'));
        EXPECT_EQ(code(in_unknown), parse_errc::invalid_utf8);
    }
    // Valid multi-byte UTF-8 is fine.
    ASSERT_EQ(code(to_json(with(minimal(), "status_message", "\"pembayaran \xe2\x9c\x93\""))),
              parse_errc::ok);
    EXPECT_EQ(update_.get(field::status_message), "pembayaran \xe2\x9c\x93");
}

TEST_F(notification_parser_test, huge_numbers) {
    const std::string huge = "123456789012345678901234567890123456789012345678901234567890";
    auto m = with(minimal(), "big", huge);
    m = with(m, "bigger", "1e99999");
    m = with(m, "tiny", "-0.5e-99999");
    m = with(m, "arr", '[' + huge + ',' + huge + ']');
    EXPECT_EQ(code(to_json(m)), parse_errc::ok);
    const auto err = parse(to_json(with(minimal(), "gross_amount", huge)));
    EXPECT_EQ(err.code, parse_errc::wrong_type);
    EXPECT_EQ(err.where, field::gross_amount);
    EXPECT_EQ(code(to_json(with(minimal(), "gross_amount", "1e99999"))), parse_errc::wrong_type);
}

TEST_F(notification_parser_test, malformed_values_in_unknown_fields) {
    for (const std::string bad :
         {"tru",     "nul",      "nulls",     "falsey",   "01",       "1.",        "-",
          "1e",      "+1",       ".5",        "0x10",     R"("\x")",  R"("\u12")", R"([1,])",
          R"([,1])", R"({"a"})", R"({"a":})", R"({1:2})", R"([1 2])", "NaN"}) {
        EXPECT_EQ(code(to_json(with(minimal(), "extra", bad))), parse_errc::malformed_json) << bad;
    }
    // Also as the value of a known field: bad syntax wins over a wrong type.
    EXPECT_EQ(code(to_json(with(minimal(), "order_id", "tru"))), parse_errc::malformed_json);
}

TEST_F(notification_parser_test, nesting_depth_limit) {
    // The root object is level 1: an unknown field may add max_json_depth - 1 levels.
    const auto nested = [](std::size_t levels, char open, char close) {
        std::string v;
        for (std::size_t i = 0; i < levels; ++i)
            v += open == '{' ? std::string{"{\"k\":"} : "[";
        v += "1";
        for (std::size_t i = 0; i < levels; ++i)
            v += close;
        return v;
    };
    EXPECT_EQ(code(to_json(with(minimal(), "deep", nested(max_json_depth - 1, '[', ']')))),
              parse_errc::ok);
    EXPECT_EQ(code(to_json(with(minimal(), "deep", nested(max_json_depth, '[', ']')))),
              parse_errc::malformed_json);
    EXPECT_EQ(code(to_json(with(minimal(), "deep", nested(max_json_depth - 1, '{', '}')))),
              parse_errc::ok);
    EXPECT_EQ(code(to_json(with(minimal(), "deep", nested(max_json_depth, '{', '}')))),
              parse_errc::malformed_json);
    const auto err = parse(to_json(with(minimal(), "deep", nested(10000, '[', ']'))));
    EXPECT_EQ(err.code, parse_errc::malformed_json);
    EXPECT_NE(err.message.find("deeper"), std::string::npos);
    // A known field holding a too-deep value: malformed, not wrong_type.
    EXPECT_EQ(code(to_json(with(minimal(), "order_id", nested(max_json_depth, '[', ']')))),
              parse_errc::malformed_json);
    // Deep and unbalanced: still an error, never a crash.
    EXPECT_EQ(code("{\"x\":" + std::string(60000, '[')), parse_errc::malformed_json);
}

TEST_F(notification_parser_test, duplicate_known_field_is_refused) {
    auto m = minimal();
    m.emplace_back("order_id", R"("ORD-2")");
    auto err = parse(to_json(m));
    EXPECT_EQ(err.code, parse_errc::duplicate_field);
    EXPECT_EQ(err.where, field::order_id);
    EXPECT_EQ(err.message, "order_id appears more than once");

    // Same value twice, a null then a value, an optional field: all refused.
    m = minimal();
    m.emplace_back("gross_amount", R"("1000.00")");
    EXPECT_EQ(code(to_json(m)), parse_errc::duplicate_field);
    m = with(minimal(), "fraud_status", "null");
    m.emplace_back("fraud_status", R"("accept")");
    EXPECT_EQ(code(to_json(m)), parse_errc::duplicate_field);
    // A key spelt with an escape is the same key.
    m = minimal();
    m.emplace_back(R"(order\u005fid)", R"("ORD-2")");
    err = parse(to_json(m));
    EXPECT_EQ(err.code, parse_errc::duplicate_field);
    EXPECT_EQ(err.where, field::order_id);
}

TEST_F(notification_parser_test, duplicate_unknown_fields_are_fine) {
    auto m = minimal();
    m.emplace_back("va_numbers", "[]");
    m.emplace_back("va_numbers", R"([{"bank":"bca"}])");
    m.emplace_back("note", "1");
    m.emplace_back("note", R"("x")");
    EXPECT_EQ(code(to_json(m)), parse_errc::ok);
}

TEST_F(notification_parser_test, root_must_be_an_object) {
    for (const std::string_view body :
         {R"([1,2,3])", R"([])", R"([{"order_id":"x"}])", R"("settlement")", "42", "-1.5e3", "true",
          "false", "null", " [ ] "}) {
        const auto err = parse(body);
        EXPECT_EQ(err.code, parse_errc::not_an_object) << body;
        EXPECT_FALSE(err.where.has_value());
    }
    // Broken JSON that is not an object either is reported as broken.
    for (const std::string_view body : {"[1,2", "[1,]", "\"abc", "tru", "[] x", "nul", "01"}) {
        EXPECT_EQ(code(body), parse_errc::malformed_json) << body;
    }
}

TEST_F(notification_parser_test, trailing_content_is_malformed) {
    const std::string body = to_json(minimal());
    for (const std::string tail : {" x", "}", "]", "{}", ",", " \"a\"", "1", " null", "\x01"}) {
        EXPECT_EQ(code(body + tail), parse_errc::malformed_json) << tail;
    }
    EXPECT_EQ(code(body + " \r\n\t"), parse_errc::ok);
    EXPECT_EQ(code(" \n" + body), parse_errc::ok);
}

TEST(notification_parser, body_larger_than_capacity) {
    notification_parser parser{200};
    status_update u;
    const std::string body = to_json(minimal());
    ASSERT_LT(body.size(), 200U);
    const std::string padded_to_limit = body + std::string(200 - body.size(), ' ');
    EXPECT_EQ(parser.parse(simdjson::padded_string{padded_to_limit}, u).code, parse_errc::ok);
    const auto err = parser.parse(simdjson::padded_string{padded_to_limit + " "}, u);
    EXPECT_EQ(err.code, parse_errc::body_too_large);
    EXPECT_EQ(to_string(err.code), "body_too_large");
    // The parser is still usable after a refusal.
    EXPECT_EQ(parser.parse(simdjson::padded_string{body}, u).code, parse_errc::ok);
    EXPECT_EQ(u.order_id(), "ORD-1");
}

TEST_F(notification_parser_test, escaped_strings_are_unescaped) {
    const auto m = with(minimal(), "order_id", R"("ORD\"1\\2\/3\u00e9\u20ac\ud83d\ude00\n\t")");
    ASSERT_EQ(code(to_json(m)), parse_errc::ok);
    EXPECT_EQ(update_.order_id(), "ORD\"1\\2/3\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n\t");
    // Escapes that are not JSON, and lone surrogates, are malformed.
    EXPECT_EQ(code(to_json(with(minimal(), "order_id", R"("a\qb")"))), parse_errc::malformed_json);
    EXPECT_EQ(code(to_json(with(minimal(), "order_id", R"("\ud800")"))),
              parse_errc::malformed_json);
    // Raw control characters must be escaped.
    EXPECT_EQ(code(to_json(with(minimal(), "order_id", "\"a\nb\""))), parse_errc::malformed_json);
    // Keys are unescaped too: an escaped spelling of a kept key is that key.
    auto m2 = without(minimal(), "order_id");
    m2.emplace_back(R"(order\u005fid)", R"("ORD-ESC")");
    m2.emplace_back(R"(unknown\tkey)", R"("ignored")");
    ASSERT_EQ(code(to_json(m2)), parse_errc::ok);
    EXPECT_EQ(update_.order_id(), "ORD-ESC");
    EXPECT_EQ(code(to_json(with(minimal(), R"(bad\qkey)", "1"))), parse_errc::malformed_json);
    // An escaped status name is the status.
    ASSERT_EQ(code(to_json(with(minimal(), "transaction_status", R"("\u0073ettlement")"))),
              parse_errc::ok);
    EXPECT_EQ(update_.status, transaction_status::settlement);
}

TEST_F(notification_parser_test, unknown_fields_of_every_type_are_ignored) {
    auto m = minimal();
    m.emplace_back("va_numbers", R"([{"va_number":"1234","bank":"bca"}])");
    m.emplace_back("payment_amounts", "[]");
    m.emplace_back("actions", R"({"a":[{"b":{"c":[null,true,false,-0.0,1E+2]}}]})");
    m.emplace_back("approval_code", "1234");
    m.emplace_back("flag", "true");
    m.emplace_back("nothing", "null");
    m.emplace_back("", R"("empty key")");
    m.emplace_back("Order_ID", R"("not the order id: keys are case-sensitive")");
    ASSERT_EQ(code(to_json(m)), parse_errc::ok);
    EXPECT_EQ(update_.order_id(), "ORD-1");
}

TEST_F(notification_parser_test, empty_and_blank_bodies) {
    EXPECT_EQ(code(""), parse_errc::malformed_json);
    EXPECT_EQ(code("   \n"), parse_errc::malformed_json);
    const auto err = parse("{}");
    EXPECT_EQ(err.code, parse_errc::missing_field);
    EXPECT_EQ(err.where, field::order_id);
}

TEST_F(notification_parser_test, syntax_errors_win_over_errors_of_meaning) {
    // A wrong type first, then a truncation: the body is reported as malformed.
    EXPECT_EQ(code(R"({"order_id":1,"status_code":"200")"), parse_errc::malformed_json);
    // A duplicate first, then bad UTF-8.
    auto m = minimal();
    m.emplace_back("order_id", R"("x")");
    m.emplace_back("note", "\"\xff\"");
    EXPECT_EQ(code(to_json(m)), parse_errc::invalid_utf8);
    // Two errors of meaning: the first in document order is reported.
    m = with(minimal(), "status_code", "200");
    m = with(m, "transaction_status", R"("nope")");
    EXPECT_EQ(parse(to_json(m)).where, field::status_code);
}

TEST_F(notification_parser_test, parser_and_update_are_reusable) {
    ASSERT_EQ(code(sample), parse_errc::ok);
    EXPECT_EQ(code(R"({"broken")"), parse_errc::malformed_json);
    // A new parse replaces every field of the previous update.
    ASSERT_EQ(code(to_json(minimal())), parse_errc::ok);
    EXPECT_EQ(update_.order_id(), "ORD-1");
    EXPECT_FALSE(update_.has(field::fraud_status));
    EXPECT_FALSE(update_.has(field::transaction_id));
    for (int i = 0; i < 100; ++i) {
        const std::string id = "ORD-" + std::to_string(i);
        ASSERT_EQ(code(to_json(with(minimal(), "order_id", '"' + id + '"'))), parse_errc::ok);
        EXPECT_EQ(update_.order_id(), id);
    }
}

TEST(notification_parser_names, parse_errc_names_are_stable) {
    EXPECT_EQ(to_string(parse_errc::ok), "ok");
    EXPECT_EQ(to_string(parse_errc::body_too_large), "body_too_large");
    EXPECT_EQ(to_string(parse_errc::invalid_utf8), "invalid_utf8");
    EXPECT_EQ(to_string(parse_errc::malformed_json), "malformed_json");
    EXPECT_EQ(to_string(parse_errc::not_an_object), "not_an_object");
    EXPECT_EQ(to_string(parse_errc::missing_field), "missing_field");
    EXPECT_EQ(to_string(parse_errc::wrong_type), "wrong_type");
    EXPECT_EQ(to_string(parse_errc::invalid_value), "invalid_value");
    EXPECT_EQ(to_string(parse_errc::duplicate_field), "duplicate_field");
}

}  // namespace
