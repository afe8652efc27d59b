// posrelay_config_limit: the limits a usage metric is compared with (README, Metrics).
#include "posrelay/metrics/config_limits.hpp"

#include <string>

namespace posrelay::metrics {

std::vector<std::pair<std::string_view, std::int64_t>> config_limits(const config& c) {
    auto n = [](auto v) { return static_cast<std::int64_t>(v); };
    return {
        {"max_connections", n(c.max_connections)},
        {"admin_max_connections", n(c.admin_max_connections)},
        {"max_header_bytes", n(c.max_header_bytes)},
        {"max_body_bytes", n(c.max_body_bytes)},
        {"terminal_max_connections", n(c.terminal_max_connections)},
        {"terminal_max_inflight", n(c.terminal_max_inflight)},
        {"terminal_max_frame_bytes", n(c.terminal_max_frame_bytes)},
        {"terminal_send_queue_bytes", n(c.terminal_send_queue_bytes)},
        {"terminal_send_queue_frames", n(c.terminal_send_queue_frames)},
        {"midtrans_max_inflight", n(c.midtrans_max_inflight)},
        {"poll_rate", n(c.poll_rate)},
        {"poll_concurrency", n(c.poll_concurrency)},
        {"qr_cache_bytes", n(c.qr_cache_bytes)},
        {"stream_maxlen", n(c.stream_maxlen)},
    };
}

void add_config_limits(registry& reg, const config& c) {
    for (const auto& [option, value] : config_limits(c)) {
        reg.add_gauge("posrelay_config_limit",
                      "A configured limit, by option (its name with _ for -): the bound a usage "
                      "metric is compared with.",
                      {{"option", std::string(option)}})
            .set(value);
    }
}

}  // namespace posrelay::metrics
