// The charge decisions of the order service (src/orders/order_service.cpp) against the
// in-memory order store and a fake Midtrans: what the terminal is answered and what is left
// in the store.
#include <gtest/gtest.h>

#include "posrelay/metrics/registry.hpp"
#include "posrelay/orders/order_service.hpp"
#include "run_coro.hpp"
#include "store_fakes.hpp"

namespace posrelay::test {
namespace {

class Charge : public ::testing::Test {
protected:
    std::string charge(const std::string& order_id) {
        const std::string json =
            R"({"op":"charge","id":"r1","order_id":")" + order_id + R"(","gross_amount":1000})";
        return run_coro(
            service_.handle("T1", "S1", fanout::request_frame{"charge", "r1", json, {}}));
    }
    static midtrans::http_result answer(unsigned status, std::string body) {
        midtrans::http_result r;
        r.sent = true;
        r.status = status;
        r.body = std::move(body);
        return r;
    }

    fake_order_store store_;
    fake_midtrans api_;
    metrics::registry reg_;
    orders::order_service service_{store_, api_, orders::service_options{}, reg_};
};

TEST_F(Charge, AnOrderIdAlreadyKnownIsRefusedWithoutCallingMidtrans) {
    store_.put("O1", {{"transaction_status", "settlement"}});
    const std::string a = charge("O1");
    EXPECT_NE(a.find(R"("code":"order_exists")"), std::string::npos) << a;
    EXPECT_NE(a.find(R"("current":"settlement")"), std::string::npos) << a;
    EXPECT_EQ(api_.count("charge"), 0u);
    EXPECT_EQ(store_.count("release"), 0u);
}

TEST_F(Charge, AStoreThatDoesNotAnswerTheReservationIsUnavailableAndNothingIsCharged) {
    store_.faults.fail("reserve", boost::asio::error::timed_out);
    const std::string a = charge("O2");
    EXPECT_NE(a.find(R"("code":"unavailable")"), std::string::npos) << a;
    EXPECT_EQ(api_.count("charge"), 0u);
}

TEST_F(Charge, MidtransUnreachableReleasesTheReservation) {
    api_.answer = [](const std::string&, const std::string&) {
        midtrans::http_result r;
        r.ec = boost::asio::error::connection_refused;  // never sent
        return r;
    };
    const std::string a = charge("O3");
    EXPECT_NE(a.find(R"("code":"unavailable")"), std::string::npos) << a;
    EXPECT_EQ(store_.count("release"), 1u);
    EXPECT_FALSE(store_.get("O3"));  // nothing half-created is left
}

TEST_F(Charge, AMidtransRefusalReleasesTheReservation) {
    api_.answer = [](const std::string&, const std::string&) {
        return answer(400, R"({"status_code":"400","status_message":"bad amount"})");
    };
    const std::string a = charge("O4");
    EXPECT_NE(a.find(R"("code":"midtrans_error")"), std::string::npos) << a;
    EXPECT_EQ(store_.count("release"), 1u);
    EXPECT_FALSE(store_.get("O4"));
}

TEST_F(Charge, ALostAnswerAsksStatusInsteadOfChargingAgainAndKeepsTheOrder) {
    api_.answer = [](const std::string& op, const std::string&) {
        midtrans::http_result r;
        if (op == "charge") {
            r.sent = true;  // sent, then the connection dropped: outcome unknown
            r.ec = boost::asio::error::connection_reset;
            return r;
        }
        r.ec = boost::asio::error::timed_out;  // and status does not answer either
        return r;
    };
    const std::string a = charge("O5");
    EXPECT_NE(a.find("outcome is unknown"), std::string::npos) << a;
    EXPECT_EQ(api_.count("charge"), 1u);
    EXPECT_EQ(api_.count("status"), 1u);
    EXPECT_EQ(store_.count("release"), 0u);  // it may exist at Midtrans: kept, and polled
    EXPECT_TRUE(store_.get("O5"));
}

}  // namespace
}  // namespace posrelay::test
