// What an AOF rewrite costs the Redis that forks it, on this machine: the fork itself, and
// then one copy-on-write page fault for each page the parent writes while the child lives.
// Redis pays both on its main thread (`latest_fork_usec` in INFO stats shows the first), so
// every command waits behind them. Bare-metal Linux takes ~1 µs per fault; a VM whose page
// tables the hypervisor shadows can take far more. Measures MiB of touched heap (argument,
// default 100, about what the 10,000-terminal benchmark's Redis holds).
//   usage: build/release/bench/fork_cow_bench [MIB] [ROUNDS]
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

struct round_result {
    double fork_ms;
    double cow_ms;
};

round_result one_round(unsigned char* mem, std::size_t bytes, std::size_t page, int round) {
    const auto t0 = clock_type::now();
    const pid_t child = ::fork();
    if (child < 0) {
        std::perror("fork");
        std::exit(1);
    }
    if (child == 0) {
        ::pause();  // keeps every page shared until the parent is done
        ::_exit(0);
    }
    const double fork_ms = ms_since(t0);
    const auto t1 = clock_type::now();
    for (std::size_t i = 0; i < bytes; i += page)
        mem[i] = static_cast<unsigned char>(round + 2);  // first write: a copy-on-write fault
    const double cow_ms = ms_since(t1);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return {fork_ms, cow_ms};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
    if (mib == 0 || rounds <= 0) {
        std::fprintf(stderr, "usage: %s [MIB > 0] [ROUNDS > 0]\n", argv[0]);
        return 2;
    }
    const std::size_t bytes = mib << 20;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("mmap");
        return 1;
    }
    ::madvise(p, bytes, MADV_NOHUGEPAGE);  // as Redis runs: 4 KiB pages (disable-thp)
    auto* mem = static_cast<unsigned char*>(p);
    for (std::size_t i = 0; i < bytes; i += page)
        mem[i] = 1;  // resident before the first fork

    std::vector<double> fork_ms, cow_ms;
    for (int r = 0; r < rounds; ++r) {
        const auto [f, c] = one_round(mem, bytes, page, r);
        fork_ms.push_back(f);
        cow_ms.push_back(c);
    }
    const double pages = static_cast<double>(bytes / page);
    const double cow = median(cow_ms);
    std::printf(
        "{\"mib\": %zu, \"pages\": %.0f, \"rounds\": %d, \"fork_ms\": %.1f, "
        "\"cow_all_pages_ms\": %.1f, \"cow_us_per_page\": %.2f}\n",
        mib, pages, rounds, median(fork_ms), cow, cow * 1000.0 / pages);
    ::munmap(p, bytes);
    return 0;
}
