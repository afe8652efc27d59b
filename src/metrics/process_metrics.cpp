// process_* metrics (memory, file descriptors, CPU time, start time) read from Linux's
// /proc at scrape time, named as the official Prometheus clients name them.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "posrelay/metrics/registry.hpp"

namespace posrelay::metrics {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// Reads a small /proc file whole (their stat size is 0, so read until EOF).
std::optional<std::string> read_proc_file(const char* path) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd);
            if (n < 0) return std::nullopt;
            return out;
        }
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (1u << 20)) {  // no /proc file we read is this big
            ::close(fd);
            return std::nullopt;
        }
    }
}

std::vector<std::string_view> split_ws(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
            ++i;
        const std::size_t start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
            ++i;
        if (i > start) out.push_back(s.substr(start, i - start));
    }
    return out;
}

std::optional<double> to_number(std::string_view s) {
    std::uint64_t v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
    return static_cast<double>(v);
}

// Field `n` (1-based, as in proc(5)) of /proc/self/stat. The command name (field 2) may
// contain spaces and parentheses, so fields are counted from the last ')'.
std::optional<double> stat_field(int n) {
    const auto text = read_proc_file("/proc/self/stat");
    if (!text) return std::nullopt;
    const auto close = text->rfind(')');
    if (close == std::string::npos || n < 3) return std::nullopt;
    const auto fields = split_ws(std::string_view(*text).substr(close + 1));
    const auto idx = static_cast<std::size_t>(n - 3);  // fields[0] is field 3 (state)
    if (idx >= fields.size()) return std::nullopt;
    return to_number(fields[idx]);
}

// Field `n` (0-based: size, resident, ...) of /proc/self/statm, in bytes.
double statm_bytes(std::size_t n) {
    const auto text = read_proc_file("/proc/self/statm");
    if (!text) return nan;
    const auto fields = split_ws(*text);
    if (n >= fields.size()) return nan;
    const auto pages = to_number(fields[n]);
    if (!pages) return nan;
    return *pages * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

double open_fds() {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return nan;
    const int own = ::dirfd(dir);  // the descriptor used to list the directory is not counted
    double count = 0;
    while (const dirent* e = ::readdir(dir)) {
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        int fd = -1;
        const auto r = std::from_chars(name.data(), name.data() + name.size(), fd);
        if (r.ec == std::errc{} && fd == own) continue;
        count += 1;
    }
    ::closedir(dir);
    return count;
}

// The soft limit from the "Max open files" line of /proc/self/limits.
double max_fds() {
    const auto text = read_proc_file("/proc/self/limits");
    if (!text) return nan;
    constexpr std::string_view key = "Max open files";
    const auto pos = text->find(key);
    if (pos == std::string::npos) return nan;
    const auto eol = text->find('\n', pos);
    const auto fields = split_ws(std::string_view(*text).substr(
        pos + key.size(), eol == std::string::npos ? std::string::npos : eol - pos - key.size()));
    if (fields.empty()) return nan;
    if (fields[0] == "unlimited") return std::numeric_limits<double>::infinity();
    return to_number(fields[0]).value_or(nan);
}

double cpu_seconds(double ticks_per_second) {
    const auto user = stat_field(14);
    const auto system = stat_field(15);
    if (!user || !system) return nan;
    return (*user + *system) / ticks_per_second;
}

// Unix time the process started: boot time (btime in /proc/stat) + starttime (ticks).
double start_time_seconds(double ticks_per_second) {
    const auto stat = read_proc_file("/proc/stat");
    const auto start_ticks = stat_field(22);
    if (!stat || !start_ticks) return nan;
    constexpr std::string_view key = "\nbtime ";
    const auto pos = stat->find(key);
    if (pos == std::string::npos) return nan;
    const auto eol = stat->find('\n', pos + key.size());
    const auto boot = to_number(std::string_view(*stat).substr(
        pos + key.size(), eol == std::string::npos ? std::string::npos : eol - pos - key.size()));
    if (!boot) return nan;
    return *boot + *start_ticks / ticks_per_second;
}

}  // namespace

void add_process_metrics(registry& r) {
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    // The start time never changes: read once here rather than on every scrape.
    const double started = start_time_seconds(ticks);

    r.add_gauge_fn("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                   [] { return statm_bytes(1); });
    r.add_gauge_fn("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
                   [] { return statm_bytes(0); });
    r.add_gauge_fn("process_open_fds", "Number of open file descriptors.", {},
                   [] { return open_fds(); });
    r.add_gauge_fn("process_max_fds", "Maximum number of open file descriptors.", {},
                   [] { return max_fds(); });
    r.add_counter_fn("process_cpu_seconds_total",
                     "Total user and system CPU time spent in seconds.", {},
                     [ticks] { return cpu_seconds(ticks); });
    r.add_gauge_fn("process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds.", {},
                   [started] { return started; });
}

}  // namespace posrelay::metrics
