// The configured limits as gauges, posrelay_config_limit{option="max_connections"} and so on:
// alert rules and dashboards divide a usage metric by its limit.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "posrelay/config.hpp"
#include "posrelay/metrics/registry.hpp"

namespace posrelay::metrics {

// (option name with '_' for '-', value) for each limit exported, in a fixed order.
[[nodiscard]] std::vector<std::pair<std::string_view, std::int64_t>> config_limits(const config& c);

// Registers one posrelay_config_limit series per limit, set to its value (start-up).
void add_config_limits(registry& reg, const config& c);

}  // namespace posrelay::metrics
