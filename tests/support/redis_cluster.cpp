// A real Redis Cluster for integration tests: redis_server processes with cluster-enabled,
// formed by redis-cli --cluster create, readiness by CLUSTER INFO with deadlines.
#include "redis_cluster.hpp"

#include <map>
#include <sstream>
#include <stdexcept>

#include "process.hpp"

namespace posrelay::test {

namespace {

using namespace std::chrono_literals;

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) {
        if (!l.empty() && l.back() == '\r') l.pop_back();
        if (!l.empty()) out.push_back(l);
    }
    return out;
}

}  // namespace

redis_cluster::~redis_cluster() {
    stop();
}

void redis_cluster::stop() {
    for (auto& n : nodes_) {
        try {
            n->stop();
        } catch (...) {  // the redis_server destructor SIGKILLs what is left
        }
    }
}

void redis_cluster::start(redis_cluster_options o) {
    opts_ = std::move(o);
    const int total = opts_.primaries * (1 + opts_.replicas);
    for (int i = 0; i < total; ++i) {
        redis_server_options so;
        so.password = opts_.password;
        // The bus port is the port + 10000 unless given: an ephemeral port may be above 55535.
        so.extra_args = {"--cluster-enabled",
                         "yes",
                         "--cluster-node-timeout",
                         std::to_string(opts_.node_timeout_ms),
                         "--cluster-port",
                         std::to_string(pick_free_port()),
                         "--cluster-require-full-coverage",
                         opts_.require_full_coverage ? "yes" : "no"};
        if (!opts_.password.empty())
            so.extra_args.insert(so.extra_args.end(), {"--masterauth", opts_.password});
        auto n = std::make_unique<redis_server>();
        n->start(so);
        nodes_.push_back(std::move(n));
    }
    std::vector<std::string> args = {"--cluster", "create"};
    for (const auto& n : nodes_)
        args.push_back("127.0.0.1:" + std::to_string(n->port()));
    args.insert(args.end(),
                {"--cluster-replicas", std::to_string(opts_.replicas), "--cluster-yes"});
    std::map<std::string, std::string> env;
    if (!opts_.password.empty()) env["REDISCLI_AUTH"] = opts_.password;  // not on the command line
    const auto res = run_command("/usr/bin/redis-cli", args, env, 60s);
    if (res.code != 0)
        throw std::runtime_error("redis-cli --cluster create failed:\n" + res.output);
    wait_ok();
}

std::string redis_cluster::url() const {
    std::string u = "redis-cluster://";
    if (!opts_.password.empty()) {
        const std::string one = nodes_.front()->url();  // redis://:<encoded>@127.0.0.1:port
        u += one.substr(8, one.find('@') - 8 + 1);
    }
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        u += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(nodes_[i]->port());
    return u;
}

std::string redis_cluster::cli(std::size_t i, std::vector<std::string> args) const {
    return nodes_.at(i)->cli(std::move(args));
}

std::string redis_cluster::node_id(std::size_t i) const {
    return cli(i, {"CLUSTER", "MYID"});
}

int redis_cluster::owner_of(std::uint16_t slot, std::size_t asked) const {
    // CLUSTER NODES: "<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slots...>"
    for (const auto& line : lines_of(cli(asked, {"CLUSTER", "NODES"}))) {
        std::istringstream in(line);
        std::string id, addr, flags, master, ping, pong, epoch, link;
        in >> id >> addr >> flags >> master >> ping >> pong >> epoch >> link;
        if (flags.find("master") == std::string::npos || flags.find("fail") != std::string::npos)
            continue;
        for (std::string range; in >> range;) {
            if (range.starts_with('[')) continue;  // a migration in progress
            const auto dash = range.find('-');
            const int lo = std::stoi(range.substr(0, dash));
            const int hi = dash == std::string::npos ? lo : std::stoi(range.substr(dash + 1));
            if (slot < lo || slot > hi) continue;
            const auto port = std::stoi(addr.substr(addr.find(':') + 1));
            for (std::size_t i = 0; i < nodes_.size(); ++i) {
                if (nodes_[i]->port() == port) return static_cast<int>(i);
            }
        }
    }
    return -1;
}

bool redis_cluster::ok() const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i]->running()) continue;
        if (cli(i, {"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) return false;
        const auto repl = cli(i, {"INFO", "replication"});
        if (repl.find("role:slave") != std::string::npos &&
            repl.find("master_link_status:up") == std::string::npos) {
            return false;  // a replica still syncing
        }
    }
    return true;
}

void redis_cluster::wait_ok(std::chrono::milliseconds limit) const {
    if (wait_until([this] { return ok(); }, limit)) return;
    std::string info;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->running()) info += cli(i, {"CLUSTER", "INFO"}).substr(0, 200) + "\n";
    }
    throw std::runtime_error("the Redis Cluster did not become ok:\n" + info);
}

void redis_cluster::move_slot(std::uint16_t slot, std::size_t from, std::size_t to) {
    const std::string s = std::to_string(slot);
    const std::string from_id = node_id(from), to_id = node_id(to);
    (void)cli(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", from_id});
    (void)cli(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", to_id});
    for (;;) {
        const auto keys = lines_of(cli(from, {"CLUSTER", "GETKEYSINSLOT", s, "100"}));
        if (keys.empty()) break;
        std::vector<std::string> m = {"MIGRATE", "127.0.0.1", std::to_string(nodes_[to]->port()),
                                      "",        "0",         "5000"};
        if (!opts_.password.empty()) m.insert(m.end(), {"AUTH", opts_.password});
        m.push_back("KEYS");
        m.insert(m.end(), keys.begin(), keys.end());
        const auto r = cli(from, m);
        if (r != "OK") throw std::runtime_error("MIGRATE failed: " + r);
    }
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->running()) (void)cli(i, {"CLUSTER", "SETSLOT", s, "NODE", to_id});
    }
}

}  // namespace posrelay::test
