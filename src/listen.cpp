// Per-io-thread SO_REUSEPORT acceptors, shared by the HTTP server and the terminal gateway.
#include "posrelay/listen.hpp"

#include <boost/asio/ip/address.hpp>

namespace posrelay {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
tcp::endpoint resolve(const endpoint& ep) {
    std::string host = ep.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(host, ec);
    if (!ec) return {addr, ep.port};
    asio::io_context ioc;
    tcp::resolver r(ioc);
    return *r.resolve(host, std::to_string(ep.port)).begin();
}
}  // namespace

listeners listen_on_every_thread(io_pool& pool, const endpoint& where) {
    listeners out;
    out.bound = resolve(where);
    for (std::size_t i = 0; i < pool.size(); ++i) {
        auto acc = std::make_unique<tcp::acceptor>(pool.context(i));
        acc->open(out.bound.protocol());
        acc->set_option(asio::socket_base::reuse_address(true));
        acc->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
        acc->bind(out.bound);
        acc->listen(asio::socket_base::max_listen_connections);
        if (i == 0) out.bound = acc->local_endpoint();  // port 0 → the real port for the others
        out.acceptors.push_back(std::move(acc));
    }
    return out;
}

}  // namespace posrelay
