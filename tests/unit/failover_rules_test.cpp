// Tests of the failover decisions: redis-sentinel:// URLs, Sentinel's answers
// (get-master-addr-by-name, ROLE, +switch-master) and WAIT's outcome. Table tests.
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "posrelay/store/replica_ack.hpp"
#include "posrelay/store/sentinel.hpp"

namespace posrelay::store {
namespace {

using kind = redis_reply::kind;

redis_reply str(std::string s) {
    redis_reply r;
    r.type = kind::string;
    r.str = std::move(s);
    return r;
}
redis_reply err(std::string s) {
    redis_reply r;
    r.type = kind::error;
    r.str = std::move(s);
    return r;
}
redis_reply integer(long long v) {
    redis_reply r;
    r.type = kind::integer;
    r.integer = v;
    return r;
}
redis_reply array(std::vector<redis_reply> e) {
    redis_reply r;
    r.type = kind::array;
    r.elements = std::move(e);
    return r;
}
redis_reply nil() {
    return {};
}

TEST(SentinelReplies, MasterAddress) {
    struct row {
        redis_reply reply;
        std::optional<redis_address> want;
    };
    const std::vector<row> rows = {
        {array({str("10.0.0.5"), str("6379")}), redis_address{"10.0.0.5", 6379}},
        {array({str("::1"), str("7000")}), redis_address{"::1", 7000}},
        {nil(), std::nullopt},  // the sentinel does not know the name
        {err("ERR No such master with that name"), std::nullopt},
        {array({str("h")}), std::nullopt},
        {array({str("h"), str("0")}), std::nullopt},
        {array({str("h"), str("65536")}), std::nullopt},
        {array({str("h"), str("12x")}), std::nullopt},
        {array({str(""), str("6379")}), std::nullopt},
        {array({str("h"), integer(6379)}), std::nullopt},
        {array({str("h"), str("1"), str("2")}), std::nullopt},
    };
    for (std::size_t i = 0; i < rows.size(); ++i)
        EXPECT_EQ(master_address(rows[i].reply), rows[i].want) << "row " << i;
}

TEST(SentinelReplies, RoleIsMaster) {
    EXPECT_TRUE(is_master_role(array({str("master"), integer(3129659), array({})})));
    EXPECT_FALSE(is_master_role(
        array({str("slave"), str("127.0.0.1"), integer(9999), str("connected"), integer(1)})));
    EXPECT_FALSE(is_master_role(array({str("sentinel"), array({str("mymaster")})})));
    EXPECT_FALSE(is_master_role(err("NOAUTH Authentication required.")));
    EXPECT_FALSE(is_master_role(array({})));
    EXPECT_FALSE(is_master_role(str("master")));
}

TEST(SentinelReplies, SwitchMasterForOurMasterOnly) {
    auto msg = [](std::string payload) {
        return array({str("message"), str("+switch-master"), str(std::move(payload))});
    };
    struct row {
        redis_reply message;
        std::optional<redis_address> want;
    };
    const std::vector<row> rows = {
        {msg("mymaster 127.0.0.1 6379 127.0.0.1 6380"), redis_address{"127.0.0.1", 6380}},
        {msg("other 127.0.0.1 6379 127.0.0.1 6380"), std::nullopt},
        {msg("mymaster2 127.0.0.1 6379 127.0.0.1 6380"), std::nullopt},
        {msg("mymaster 127.0.0.1 6379 127.0.0.1"), std::nullopt},
        {msg("mymaster 127.0.0.1 6379 127.0.0.1 6380 extra"), std::nullopt},
        {msg("mymaster 127.0.0.1 6379 127.0.0.1 0"), std::nullopt},
        {msg("mymaster  127.0.0.1 6379 127.0.0.1 6380"), std::nullopt},
        {msg(""), std::nullopt},
        {array({str("message"), str("+sdown"), str("mymaster 1 2 3 4")}), std::nullopt},
        {array({str("subscribe"), str("+switch-master"), integer(1)}), std::nullopt},
    };
    for (std::size_t i = 0; i < rows.size(); ++i)
        EXPECT_EQ(switched_master(rows[i].message, "mymaster"), rows[i].want) << "row " << i;
}

TEST(ReplicaAck, WaitOutcome) {
    const auto short_ = make_error_code(redis_errc::replicas_not_acknowledged);
    const auto lost = make_error_code(redis_errc::connection_lost);
    const auto bad = make_error_code(redis_errc::protocol_error);
    struct row {
        boost::system::error_code ec;
        redis_reply reply;
        unsigned wanted;
        boost::system::error_code want;
    };
    const std::vector<row> rows = {
        {{}, integer(1), 1, {}},
        {{}, integer(2), 1, {}},
        {{}, integer(0), 1, short_},
        {{}, integer(1), 2, short_},
        {{}, integer(-1), 1, short_},
        {{}, err("ERR WAIT cannot be used with replica instances"), 1, bad},
        {{}, str("1"), 1, bad},
        {lost, integer(5), 1, lost},
        {{}, integer(0), 0, {}},
    };
    for (std::size_t i = 0; i < rows.size(); ++i)
        EXPECT_EQ(wait_outcome(rows[i].ec, rows[i].reply, rows[i].wanted), rows[i].want)
            << "row " << i;
}

}  // namespace
}  // namespace posrelay::store
