// lua_script's pure parts: a script's SHA1 (the name Redis gives it) and the NOSCRIPT decision.
#include <gtest/gtest.h>

#include "posrelay/store/lua_script.hpp"

namespace posrelay::store {
namespace {

TEST(LuaScriptSha, IsWhatRedisNamesTheScript) {
    // Redis's own documentation: SCRIPT LOAD "return 1" answers this SHA1.
    EXPECT_EQ(sha1_hex("return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(LuaScriptSha, IsComputedOnceAtConstruction) {
    metrics::registry reg;
    const lua_script s("test", "return 1", reg);
    EXPECT_EQ(s.name(), "test");
    EXPECT_EQ(s.body(), "return 1");
    EXPECT_EQ(s.sha(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    // Its reload counter is registered with the script's name, at zero.
    EXPECT_NE(reg.render().find("posrelay_redis_script_loads_total{script=\"test\"} 0"),
              std::string::npos);
}

redis_reply reply(redis_reply::kind k, std::string s) {
    redis_reply r;
    r.type = k;
    r.str = std::move(s);
    return r;
}

TEST(LuaScriptNoscript, OnlyANoscriptErrorReplySendsTheBody) {
    using k = redis_reply::kind;
    // Any transport error (redis_errc lives in the server library).
    const auto timeout = make_error_code(boost::system::errc::timed_out);
    const struct {
        boost::system::error_code ec;
        redis_reply r;
        bool reload;
    } cases[] = {
        {{}, reply(k::error, "NOSCRIPT No matching script. Please use EVAL."), true},
        {{}, reply(k::error, "NOSCRIPT"), true},
        {{}, reply(k::error, "ERR Error running script"), false},
        {{}, reply(k::error, "BUSY Redis is busy running a script"), false},
        {{}, reply(k::error, "ERR NOSCRIPT in the message"), false},
        {{}, reply(k::string, "NOSCRIPT"), false},  // a script's own string answer
        {{}, reply(k::status, "NOSCRIPT"), false},
        {{}, reply(k::integer, ""), false},
        {timeout, reply(k::error, "NOSCRIPT"), false},  // never resent after a transport error
        {timeout, reply(k::nil, ""), false},
    };
    for (const auto& c : cases)
        EXPECT_EQ(needs_reload(c.ec, c.r), c.reload) << c.r.str << " / " << c.ec.message();
}

}  // namespace
}  // namespace posrelay::store
