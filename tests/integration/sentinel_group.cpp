// Redis Sentinel on loopback for tests (tests/integration/sentinel_group.hpp).
#include "sentinel_group.hpp"

#include <signal.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace posrelay::test {

namespace {

using namespace std::chrono_literals;

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
        s.pop_back();
    return s;
}

}  // namespace

sentinel_group::~sentinel_group() {
    for (auto& s : sentinels_) {
        s->signal(SIGCONT);  // a stopped one
        s->signal(SIGKILL);
        (void)s->wait_exit(5s);
    }
    sentinels_.clear();
    nodes_.clear();  // each stops its server
    if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
}

void sentinel_group::start(int replicas, int sentinels) {
    std::string templ = "/tmp/posrelay-sentinel-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = templ;
    // A full sync starts at once (not after 5 s waiting for more replicas): any node may
    // become a master that syncs a replica.
    redis_server_options po;
    po.extra_args = {"--repl-diskless-sync-delay", "0"};
    nodes_.push_back(std::make_unique<redis_server>());
    nodes_[0]->start(po);
    const std::string primary = std::to_string(nodes_[0]->port());
    for (int i = 0; i < replicas; ++i) {
        auto r = std::make_unique<redis_server>();
        redis_server_options o;
        o.extra_args = {"--replicaof", "127.0.0.1", primary, "--repl-diskless-sync-delay", "0"};
        r->start(o);
        nodes_.push_back(std::move(r));
        if (!wait_replica_up(nodes_.size() - 1, 10s))
            throw std::runtime_error("replica not in sync");
    }
    for (int i = 0; i < sentinels; ++i) {
        const std::uint16_t port = pick_free_port();
        const std::string conf = dir_ + "/sentinel" + std::to_string(i) + ".conf";
        std::ofstream(conf) << "port " << port << "\nbind 127.0.0.1\ndaemonize no\ndir " << dir_
                            << "\nsentinel monitor " << master_name << " 127.0.0.1 " << primary
                            << " 2\nsentinel down-after-milliseconds " << master_name
                            << " 500\nsentinel failover-timeout " << master_name
                            << " 3000\nsentinel parallel-syncs " << master_name << " 1\n";
        const char* exe = ::getenv("REDIS_SERVER");
        sentinels_.push_back(
            std::make_unique<child_process>(exe != nullptr ? exe : "/usr/bin/redis-server",
                                            std::vector<std::string>{conf, "--sentinel"}));
        sentinel_ports_.push_back(port);
    }
    // Each sentinel knows the master, its replicas and the other sentinels.
    const auto expected = std::to_string(replicas);
    const auto others = std::to_string(sentinels - 1);
    for (std::size_t i = 0; i < sentinel_ports_.size(); ++i) {
        const bool ok = wait_until(
            [&] {
                const auto m = sentinel_cli(i, {"SENTINEL", "master", master_name});
                const auto find = [&](std::string_view key) {
                    const auto at = m.find(std::string(key) + "\n");
                    if (at == std::string::npos) return std::string();
                    const auto start = at + key.size() + 1;
                    return m.substr(start, m.find('\n', start) - start);
                };
                return find("num-slaves") == expected && find("num-other-sentinels") == others;
            },
            20s);
        if (!ok) throw std::runtime_error("sentinel " + std::to_string(i) + " not ready");
    }
}

std::string sentinel_group::url() const {
    std::string u = "redis-sentinel://";
    for (std::size_t i = 0; i < sentinel_ports_.size(); ++i)
        u += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(sentinel_ports_[i]);
    return u + "/" + master_name;
}

std::string sentinel_group::sentinel_cli(std::size_t i, std::vector<std::string> args) const {
    std::vector<std::string> full = {"-h", "127.0.0.1", "-p", std::to_string(sentinel_ports_.at(i)),
                                     "--raw"};
    full.insert(full.end(), args.begin(), args.end());
    return trimmed(run_command("/usr/bin/redis-cli", full, {}, 5s).output);
}

std::uint16_t sentinel_group::master_port(std::size_t via) const {
    const auto out = sentinel_cli(via, {"SENTINEL", "get-master-addr-by-name", master_name});
    const auto nl = out.find('\n');
    if (nl == std::string::npos) return 0;
    return static_cast<std::uint16_t>(std::atoi(out.c_str() + nl + 1));
}

std::size_t sentinel_group::index_of(std::uint16_t port) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->port() == port) return i;
    }
    throw std::runtime_error("no node on port " + std::to_string(port));
}

std::uint16_t sentinel_group::wait_for_new_master(std::uint16_t old_port,
                                                  std::chrono::milliseconds limit,
                                                  std::size_t via) {
    std::uint16_t found = 0;
    (void)wait_until(
        [&] {
            const auto p = master_port(via);
            if (p == 0 || p == old_port) return false;
            const auto& n = *nodes_.at(index_of(p));
            if (!n.running() || n.cli({"ROLE"}).rfind("master", 0) != 0) return false;
            found = p;
            return true;
        },
        limit);
    return found;
}

// Its master counts it online (after its first ACK), not only its link up: WAIT needs that.
bool sentinel_group::wait_replica_up(std::size_t i, std::chrono::milliseconds limit) {
    const std::string online = "port=" + std::to_string(nodes_.at(i)->port()) + ",state=online";
    return wait_until(
        [&] {
            const auto info = nodes_.at(i)->cli({"INFO", "replication"});
            const auto at = info.find("master_port:");
            if (info.find("master_link_status:up") == std::string::npos || at == std::string::npos)
                return false;
            const auto port = static_cast<std::uint16_t>(std::atoi(info.c_str() + at + 12));
            for (const auto& n : nodes_) {
                if (n->running() && n->port() == port)
                    return n->cli({"INFO", "replication"}).find(online) != std::string::npos;
            }
            return false;
        },
        limit);
}

}  // namespace posrelay::test
