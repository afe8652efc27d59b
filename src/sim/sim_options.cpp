// Command line and /sim/config parsing for midtrans-sim.
#include "sim_options.hpp"

#include <boost/json/serialize.hpp>
#include <boost/program_options.hpp>

#include <random>
#include <sstream>
#include <stdexcept>

namespace posrelay::sim {

namespace po = boost::program_options;
namespace json = boost::json;

namespace {

std::optional<double> number_of(const json::value& v) {
    if (v.is_double()) return v.get_double();
    if (v.is_int64()) return static_cast<double>(v.get_int64());
    if (v.is_uint64()) return static_cast<double>(v.get_uint64());
    return std::nullopt;
}

std::optional<std::int64_t> count_of(const json::value& v) {
    if (v.is_int64() && v.get_int64() >= 0) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= 1'000'000'000'000ULL)
        return static_cast<std::int64_t>(v.get_uint64());
    return std::nullopt;
}

bool valid_rate(double p) {
    return p >= 0 && p <= 1;
}

void check_rate(const char* name, double p) {
    if (!valid_rate(p)) throw std::invalid_argument(std::string(name) + " must be in [0, 1]");
}

}  // namespace

std::optional<std::string> apply_config(fault_config& f, const json::object& o) {
    fault_config n = f;
    for (const auto& [key, v] : o) {
        const std::string k(key);
        double* rate = k == "drop_rate"        ? &n.drop_rate
                       : k == "duplicate_rate" ? &n.duplicate_rate
                       : k == "reorder_rate"   ? &n.reorder_rate
                       : k == "error_rate"     ? &n.error_rate
                       : k == "auto_pay_rate"  ? &n.auto_pay_rate
                                               : nullptr;
        std::int64_t* count = k == "notify_delay_ms"     ? &n.notify_delay_ms
                              : k == "notify_jitter_ms"  ? &n.notify_jitter_ms
                              : k == "status_rate_limit" ? &n.status_rate_limit
                              : k == "deny_next_charges" ? &n.deny_next_charges
                              : k == "charge_delay_ms"   ? &n.charge_delay_ms
                              : k == "auto_pay_after_ms" ? &n.auto_pay_after_ms
                                                         : nullptr;
        if (rate) {
            const auto p = number_of(v);
            if (!p || !valid_rate(*p)) return k + " must be a number in [0, 1]";
            *rate = *p;
        } else if (count) {
            const auto c = count_of(v);
            if (!c) return k + " must be a non-negative integer";
            *count = *c;
        } else if (k == "error_status") {
            const auto c = count_of(v);
            if (!c || (*c != 500 && *c != 503 && *c != 429))
                return "error_status must be 500, 503 or 429";
            n.error_status = static_cast<unsigned>(*c);
        } else if (k == "down") {
            if (!v.is_bool()) return "down must be true or false";
            n.down = v.get_bool();
        } else {
            return "unknown setting: " + k;
        }
    }
    f = n;
    return std::nullopt;
}

json::object to_json(const fault_config& f) {
    return {{"drop_rate", f.drop_rate},
            {"duplicate_rate", f.duplicate_rate},
            {"reorder_rate", f.reorder_rate},
            {"notify_delay_ms", f.notify_delay_ms},
            {"notify_jitter_ms", f.notify_jitter_ms},
            {"error_rate", f.error_rate},
            {"error_status", f.error_status},
            {"status_rate_limit", f.status_rate_limit},
            {"deny_next_charges", f.deny_next_charges},
            {"charge_delay_ms", f.charge_delay_ms},
            {"auto_pay_after_ms", f.auto_pay_after_ms},
            {"auto_pay_rate", f.auto_pay_rate},
            {"down", f.down}};
}

sim_cli parse_sim_options(int argc, const char* const* argv) {
    std::string listen = "127.0.0.1:8090", notify_timeout = "15s", notify_pending = "yes",
                auto_pay_after = "0", log_level = "info";
    sim_cli cli;
    sim_options& o = cli.opts;
    fault_config& f = o.faults;
    po::options_description desc(
        "midtrans-sim: a stand-in for Midtrans's Core API (GoPay/QRIS charges, status, cancel,\n"
        "expire, QR images, signed notifications with faults). Server key from the environment\n"
        "variable MIDTRANS_SIM_SERVER_KEY (required).\n\nOptions");
    desc.add_options()("help,h", "this text")(
        "listen", po::value(&listen), "HOST:PORT to serve (port 0: pick one) [127.0.0.1:8090]")(
        "public-url", po::value(&o.public_url), "base of action URLs [http://<bound address>]")(
        "notification-url", po::value(&o.notification_url),
        "where notifications go when a charge has no X-Override-Notification (http only)")(
        "merchant-id", po::value(&o.merchant_id), "merchant_id in answers [G123456789]")(
        "seed", po::value<std::uint64_t>(), "seed of every random choice [random, logged]")(
        "time-scale", po::value(&o.time_scale),
        "divides the notification retry schedule and timeout [1]")(
        "notify-timeout", po::value(&notify_timeout), "notification answer deadline [15s]")(
        "notify-pending", po::value(&notify_pending),
        "yes|no: notify pending after a charge [yes]")(
        "drop-rate", po::value(&f.drop_rate), "probability a notification is never sent [0]")(
        "duplicate-rate", po::value(&f.duplicate_rate), "probability it is sent twice [0]")(
        "reorder-rate", po::value(&f.reorder_rate),
        "probability it is held until after the order's next one [0]")(
        "notify-delay", po::value(&f.notify_delay_ms), "ms before a first attempt [0]")(
        "notify-jitter", po::value(&f.notify_jitter_ms), "plus uniform 0..MS [0]")(
        "error-rate", po::value(&f.error_rate), "probability a /v2 call fails [0]")(
        "error-status", po::value(&f.error_status), "500|503|429: how it fails [500]")(
        "status-rate-limit", po::value(&f.status_rate_limit),
        "GET status calls per second, more get 429 [0 = unlimited]")(
        "auto-pay-after", po::value(&auto_pay_after), "pay pending orders after this long [off]")(
        "auto-pay-rate", po::value(&f.auto_pay_rate), "fraction of orders auto-paid [1]")(
        "max-orders", po::value(&o.max_orders),
        "transactions kept; charges beyond get 500 [1000000]")(
        "max-notifications", po::value(&o.max_notifications),
        "notification deliveries alive at once; more are dropped and counted [100000]")(
        "log-level", po::value(&log_level), "debug|info|warn|error [info]");
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw std::invalid_argument(e.what());
    }
    if (vm.count("help")) {
        std::ostringstream s;
        s << desc;
        cli.help = true;
        cli.help_text = s.str();
        return cli;
    }
    o.listen = parse_endpoint(listen);
    o.notify_timeout = parse_duration(notify_timeout);
    f.auto_pay_after_ms = auto_pay_after == "off" ? 0 : parse_duration(auto_pay_after).count();
    if (notify_pending != "yes" && notify_pending != "no")
        throw std::invalid_argument("--notify-pending must be yes or no");
    o.notify_pending = notify_pending == "yes";
    if (!(o.time_scale > 0) || o.time_scale > 1e7)
        throw std::invalid_argument("--time-scale must be in (0, 1e7]");
    if (o.notify_timeout.count() <= 0) throw std::invalid_argument("--notify-timeout must be > 0");
    check_rate("--drop-rate", f.drop_rate);
    check_rate("--duplicate-rate", f.duplicate_rate);
    check_rate("--reorder-rate", f.reorder_rate);
    check_rate("--error-rate", f.error_rate);
    check_rate("--auto-pay-rate", f.auto_pay_rate);
    if (f.error_status != 500 && f.error_status != 503 && f.error_status != 429)
        throw std::invalid_argument("--error-status must be 500, 503 or 429");
    if (f.notify_delay_ms < 0 || f.notify_jitter_ms < 0 || f.status_rate_limit < 0)
        throw std::invalid_argument("delays and limits must not be negative");
    if (o.max_orders == 0 || o.max_notifications == 0)
        throw std::invalid_argument("--max-orders and --max-notifications must be > 0");
    const auto lvl = log::parse_level(log_level);
    if (!lvl) throw std::invalid_argument("--log-level must be debug, info, warn or error");
    o.log_level = *lvl;
    o.seed = vm.count("seed") ? vm["seed"].as<std::uint64_t>() : std::random_device{}();
    return cli;
}

}  // namespace posrelay::sim
