// midtrans-sim test support: the child process, control API helpers, a notification receiver.
#include "midtrans_sim.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/parse.hpp>

#include <stdexcept>

namespace posrelay::test {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

sim_process start_midtrans_sim(std::vector<std::string> args, std::string server_key) {
    add_default_listen(args);
    sim_process p;
    p.proc = std::make_unique<child_process>(
        MIDTRANS_SIM_BINARY, std::move(args),
        std::map<std::string, std::string>{{"MIDTRANS_SIM_SERVER_KEY", std::move(server_key)}});
    const std::string line = p.proc->wait_for_line(R"("msg":"listening")");
    p.port = static_cast<unsigned short>(json_int(line, "port"));
    return p;
}

std::string sim_auth_header(std::string_view server_key) {
    const std::string plain = std::string(server_key) + ":";
    std::string out(boost::beast::detail::base64::encoded_size(plain.size()), '\0');
    out.resize(boost::beast::detail::base64::encode(out.data(), plain.data(), plain.size()));
    return "Basic " + out;
}

http_response sim_pay(unsigned short port, std::string_view order_id, std::string_view query) {
    std::string target = "/sim/orders/" + std::string(order_id) + "/pay";
    if (!query.empty()) target += "?" + std::string(query);
    return http_client(port).post(target, "");
}

http_response sim_config(unsigned short port, std::string json) {
    return http_client(port).post("/sim/config", std::move(json));
}

boost::json::object sim_stats(unsigned short port) {
    const auto res = http_client(port).get("/sim/stats");
    if (res.result_int() != 200) throw std::runtime_error("GET /sim/stats: " + res.body());
    return boost::json::parse(res.body()).as_object();
}

notification_receiver::notification_receiver(std::vector<unsigned> answers)
    : answers_(std::move(answers)),
      acceptor_(ioc_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    accept_next();
    thread_ = std::thread([this] { ioc_.run(); });
}

notification_receiver::~notification_receiver() {
    ioc_.stop();
    thread_.join();
}

std::string notification_receiver::url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/notify";
}

void notification_receiver::accept_next() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
        if (ec) return;
        handle(std::move(s));
        accept_next();
    });
}

// One request per connection, read and answered synchronously on the receiver's thread
// (the sender closes after each answer); a 5 s socket timeout bounds a stalled peer.
void notification_receiver::handle(tcp::socket s) {
    timeval tv{5, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    boost::beast::flat_buffer buf;
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(s, buf, req, ec);
    if (ec) return;
    received r;
    r.target = std::string(req.target());
    r.user_agent = std::string(req[http::field::user_agent]);
    r.content_type = std::string(req[http::field::content_type]);
    r.body = req.body();
    const auto v = boost::json::parse(r.body, ec);
    if (!ec && v.is_object()) r.json = v.get_object();
    {
        std::lock_guard lock(mutex_);
        const std::size_t i = received_.size();
        r.answered = i < answers_.size() ? answers_[i] : 200;
    }
    http::response<http::string_body> res{static_cast<http::status>(r.answered), 11};
    res.set(http::field::content_type, "application/json");
    res.body() = R"({"status":"ok"})";
    res.prepare_payload();
    http::write(s, res, ec);
    std::lock_guard lock(mutex_);
    received_.push_back(std::move(r));
    cv_.notify_all();
}

std::vector<notification_receiver::received> notification_receiver::wait_for(
    std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; }))
        throw std::runtime_error("notification_receiver: " + std::to_string(received_.size()) +
                                 " of " + std::to_string(n) + " requests before the timeout");
    return received_;
}

std::vector<notification_receiver::received> notification_receiver::all() const {
    std::lock_guard lock(mutex_);
    return received_;
}

}  // namespace posrelay::test
