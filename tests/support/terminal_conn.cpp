// Blocking terminal connection for gateway tests.
#include "terminal_conn.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "posrelay/fanout/protocol.hpp"

namespace posrelay::test {

terminal_conn::terminal_conn(unsigned short port, int rcvbuf) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        const int err = errno;
        ::close(fd_);
        throw std::runtime_error(std::string("connect: ") + std::strerror(err));
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

terminal_conn::~terminal_conn() {
    if (fd_ >= 0) ::close(fd_);
}

void terminal_conn::send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) throw std::runtime_error("send failed");
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

void terminal_conn::send_line(std::string_view json) {
    std::string line(json);
    line += '\n';
    send_raw(line);
}

std::optional<boost::json::object> terminal_conn::read_frame(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
            const std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return boost::json::parse(line).as_object();
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
        char tmp[16384];
        const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0) throw std::runtime_error("connection closed by the server");
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
}

bool terminal_conn::closed_within(std::chrono::milliseconds timeout) {
    try {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            (void)read_frame(std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now()));
        }
    } catch (const std::exception&) {
        return true;
    }
    return false;
}

boost::json::object terminal_conn::handshake(std::string_view terminal, std::string_view store,
                                             const hello_options& o) {
    boost::json::object h;
    h["op"] = "hello";
    h["v"] = 1;
    h["terminal_id"] = terminal;
    h["store_id"] = store;
    h["token"] = fanout::mint_token(test_terminal_secret, terminal, store);
    if (o.resume_from) h["resume_from"] = *o.resume_from;
    if (o.subscribe_store) h["subscribe"] = boost::json::array{"store"};
    if (o.epoch) h["epoch"] = *o.epoch;
    if (o.resume_eid) h["resume_eid"] = *o.resume_eid;
    send_line(boost::json::serialize(h));
    auto f = read_frame();
    if (!f) throw std::runtime_error("no answer to hello");
    return *f;
}

boost::json::object terminal_conn::hello(std::string_view terminal, std::string_view store,
                                         std::optional<std::uint64_t> resume_from,
                                         bool subscribe_store) {
    auto w = handshake(terminal, store, {resume_from, subscribe_store, std::nullopt, std::nullopt});
    if (!w.at("op").is_string() || w.at("op").get_string() != "welcome") {
        throw std::runtime_error("no welcome: " + boost::json::serialize(w));
    }
    return w;
}

std::optional<boost::json::object> terminal_conn::next_event(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto f = read_frame(left);
        if (!f) return std::nullopt;
        const std::string_view op =
            f->at("op").is_string() ? std::string_view(f->at("op").get_string()) : "";
        if (op == "ping") {
            send_line(R"({"op":"pong"})");
            continue;
        }
        if (op == "event") return f;
        throw std::runtime_error("unexpected frame: " + boost::json::serialize(*f));
    }
}

void terminal_conn::ack(std::uint64_t seq) {
    send_line(R"({"op":"ack","seq":)" + std::to_string(seq) + "}");
}

std::map<std::string, std::string> relay_env(std::string_view redis_url,
                                             std::string_view server_key) {
    return {{"POSRELAY_SERVER_KEY", std::string(server_key)},
            {"POSRELAY_REDIS_URL", std::string(redis_url)},
            {"POSRELAY_OPERATOR_TOKEN", std::string(test_operator_token)},
            {"POSRELAY_TERMINAL_SECRET", std::string(test_terminal_secret)}};
}

relay_node start_relay_node(std::vector<std::string> args, std::map<std::string, std::string> env) {
    relay_node n;
    n.p = start_posrelay(std::move(args), std::move(env));
    n.terminal_port = static_cast<unsigned short>(
        json_int(n.p.proc->wait_for_line(R"("what":"terminals")"), "port"));
    if (!wait_ready(n.p.admin_port))
        throw std::runtime_error("posrelay not ready: " + n.p.proc->output());
    return n;
}

int register_order(unsigned short http_port, std::string_view order_id, std::string_view terminal,
                   std::string_view store, std::string_view gross) {
    boost::json::object o{{"order_id", order_id},
                          {"gross_amount", gross},
                          {"terminal_id", terminal},
                          {"store_id", store}};
    http_client c(http_port);
    return c
        .request(boost::beast::http::verb::post, "/v1/orders", boost::json::serialize(o),
                 "application/json",
                 {{"Authorization", "Bearer " + std::string(test_operator_token)}})
        .result_int();
}

int notify(unsigned short http_port, std::string_view order_id, std::string_view status,
           std::string_view gross) {
    notification_fields f;
    f.order_id = order_id;
    f.transaction_status = status;
    f.status_code = status == "settlement" ? "200" : status == "pending" ? "201" : "202";
    f.gross_amount = gross;
    http_client c(http_port);
    return c.post(notifications_path, signed_notification(f, test_server_key)).result_int();
}

}  // namespace posrelay::test
