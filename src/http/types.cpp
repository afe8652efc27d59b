// JSON answer helpers shared by every route.
#include "posrelay/http/types.hpp"

#include <boost/beast/http/field.hpp>

#include <cctype>

#include "posrelay/log.hpp"

namespace posrelay::http {

response json_response(unsigned status, std::string body) {
    response res{static_cast<beast_http::status>(status), 11};
    res.set(beast_http::field::content_type, "application/json");
    res.body() = std::move(body);
    return res;  // the server writes Content-Length from the body
}

response json_error(unsigned status, std::string_view error, std::string_view message,
                    std::string_view field) {
    std::string body;
    body.reserve(64 + error.size() + message.size() + field.size());
    body += R"({"status":"rejected","error":")";
    log::append_json_escaped(body, error);
    body += R"(","message":")";
    log::append_json_escaped(body, message);
    body += '"';
    if (!field.empty()) {
        body += R"(,"field":")";
        log::append_json_escaped(body, field);
        body += '"';
    }
    body += '}';
    return json_response(status, std::move(body));
}

bool is_json_content_type(std::string_view ct) noexcept {
    // media-type = type "/" subtype *( OWS ";" OWS parameter ), case-insensitive.
    while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t'))
        ct.remove_prefix(1);
    constexpr std::string_view want = "application/json";
    if (ct.size() < want.size()) return false;
    for (std::size_t i = 0; i < want.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(ct[i])) != want[i]) return false;
    }
    ct.remove_prefix(want.size());
    while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t'))
        ct.remove_prefix(1);
    return ct.empty() || ct.front() == ';';
}

}  // namespace posrelay::http
