// The pure parts of lua_script (in posrelay_base, unit-tested): a script's SHA1, the NOSCRIPT
// decision and its construction.
#include <openssl/evp.h>

#include <stdexcept>

#include "posrelay/store/lua_script.hpp"

namespace posrelay::store {

std::string sha1_hex(std::string_view s) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(s.data(), s.size(), md, &n, EVP_sha1(), nullptr) != 1) {
        throw std::runtime_error("SHA1 unavailable");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (unsigned i = 0; i < n; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

bool needs_reload(const boost::system::error_code& ec, const redis_reply& reply) noexcept {
    return !ec && reply.is_error() && reply.str.starts_with("NOSCRIPT");
}

lua_script::lua_script(std::string name, std::string_view body, metrics::registry& reg)
    : name_(std::move(name)),
      body_(body),
      sha_(sha1_hex(body)),
      reloads_(reg.add_counter("posrelay_redis_script_loads_total",
                               "Times a script was sent again (EVAL) after Redis answered "
                               "NOSCRIPT (its script cache was flushed or the server restarted).",
                               {{"script", name_}})) {}

}  // namespace posrelay::store
