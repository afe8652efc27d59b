// Beast message types used by every HTTP route, and helpers that build posrelay's JSON
// answers (every answer, errors included, carries a JSON body).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace posrelay::http {

namespace beast_http = boost::beast::http;
using request = beast_http::request<beast_http::string_body>;
using response = beast_http::response<beast_http::string_body>;

// co_await op(..., use_nothrow) yields a tuple (error_code, ...) instead of throwing.
inline constexpr auto use_nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

// What a route knows about the request beyond the message itself.
struct request_context {
    std::size_t thread_index = 0;  // the io thread serving the connection
    std::string_view remote;       // "ip:port" of the peer, for logs
    // The client's address (no port): the peer, a PROXY header's source, or X-Forwarded-For
    // from a trusted proxy (--trusted-proxies). Keys per-client limits.
    std::string_view client;
    std::chrono::steady_clock::time_point started;
};

// A response with a JSON body. `body` must already be JSON.
[[nodiscard]] response json_response(unsigned status, std::string body);

// {"status":"rejected","error":"<error>","message":"<message>"[,"field":"<field>"]}
// error: a stable snake_case code; message: for humans. Both escaped.
[[nodiscard]] response json_error(unsigned status, std::string_view error, std::string_view message,
                                  std::string_view field = {});

// True when the Content-Type header names application/json (parameters such as
// charset are allowed; case-insensitive).
[[nodiscard]] bool is_json_content_type(std::string_view content_type) noexcept;

}  // namespace posrelay::http
