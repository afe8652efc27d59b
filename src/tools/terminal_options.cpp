// posrelay-terminal's command line over Boost.Program_options, with the token read from
// POSRELAY_TERMINAL_TOKEN or --token-file only.
#include "tools/terminal_options.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/program_options.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>
#include <vector>

namespace posrelay::tools {

namespace po = boost::program_options;

namespace {

constexpr const char* usage_text =
    "usage: posrelay-terminal [options] listen\n"
    "       posrelay-terminal [options] charge ORDER_ID AMOUNT [--payment-type qris|gopay]\n"
    "                                          [--expiry SECONDS] [--wait] [--show-qr]\n"
    "       posrelay-terminal [options] cancel|expire|status ORDER_ID\n"
    "\n"
    "Connects to posrelay's terminal gateway as one POS terminal.\n"
    "\n"
    "listen: prints every event frame as one JSON line on stdout (as received), acks it, and\n"
    "reconnects (capped, jittered backoff; resuming after the last processed seq) until\n"
    "stopped. Events whose seq is not above the last processed one are printed too, with a\n"
    "warning on stderr.\n"
    "\n"
    "charge, cancel, expire, status: sends that request (a fresh request id) once connected\n"
    "and prints the answer frame (op result or error) as one JSON line on stdout; a charge\n"
    "also gets a human summary and the QR code on stderr (drawn when stderr is a terminal or\n"
    "with --show-qr). AMOUNT is whole rupiah. Events that arrive meanwhile are printed, acked\n"
    "and kept in the state file as with listen. A request is sent once: if the connection\n"
    "ends before its answer, the outcome is unknown (exit 4; ask `status`). charge --wait then\n"
    "prints the order's events until it is paid or final (expire, cancel, deny, failure,\n"
    "refund, ...). This connection replaces any other one of the same terminal id.\n"
    "\n"
    "Connection state changes are logged as JSON lines on stderr. The token comes from\n"
    "POSRELAY_TERMINAL_TOKEN or --token-file, never from the command line (mint one with\n"
    "`posrelay token TERMINAL STORE`).\n";

constexpr const char* exit_text =
    "\n"
    "Exit codes: 0 --exit-after-events reached, SIGINT/SIGTERM, goaway with --once, a request\n"
    "    answered with a result (charge --wait: the order is paid);\n"
    "  1 permanent server error (bad_token, token_expired, revoked, unsupported_version,\n"
    "    replaced, or a protocol bug: bad_frame, frame_too_large, unknown_op, handshake_required,\n"
    "    bad_ack) or a local failure; other errors are followed by a reconnect (rate_limited:\n"
    "    after 60s);\n"
    "  2 usage error (also: no token, unreadable state file); 3 --timeout expired;\n"
    "  4 --once and the connection failed or was lost (or resume_gap), or the connection\n"
    "    ended after a request was sent and before its answer (outcome unknown);\n"
    "  5 the request was answered with an error frame (bad_request, order_exists,\n"
    "    order_not_found, midtrans_error, unavailable, busy, ...), printed on stdout;\n"
    "  6 charge --wait: the order ended unpaid (expire, cancel, deny, failure, refund, ...).\n";

std::string_view trim(std::string_view s) {
    const char* ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

std::chrono::milliseconds duration_option(const po::variables_map& vm, const char* name,
                                          std::chrono::milliseconds def) {
    if (!vm.count(name)) return def;
    try {
        return parse_duration(vm[name].as<std::string>());
    } catch (const std::invalid_argument& e) {
        throw usage_error(std::string("--") + name + ": " + e.what());
    }
}

constexpr const char* commands_text = "listen, charge, cancel, expire or status";

// The command and its arguments (the positionals). Never echoes what looks like a token.
void parse_command(const std::vector<std::string>& words, terminal_cli& cli) {
    using enum terminal_cli::action;
    if (words.empty()) throw usage_error(std::string("no command: expected ") + commands_text);
    const std::string& c = words[0];
    std::size_t args = 0;
    if (c == "listen") {
        cli.what = listen;
    } else if (c == "charge") {
        cli.what = charge;
        args = 2;
    } else if (c == "cancel" || c == "expire" || c == "status") {
        cli.what = c == "cancel" ? cancel : c == "expire" ? expire : status;
        args = 1;
    } else if (c.starts_with("v1.")) {
        throw usage_error(std::string("unknown command (expected ") + commands_text + ")");
    } else {
        throw usage_error("unknown command '" + c + "' (expected " + commands_text + ")");
    }
    if (words.size() != args + 1) {
        if (args == 0) {
            if (words[1].starts_with("v1.")) throw usage_error("listen takes no arguments");
            throw usage_error("listen takes no arguments (got '" + words[1] + "')");
        }
        throw usage_error(c + (args == 2 ? " takes ORDER_ID AMOUNT" : " takes ORDER_ID"));
    }
    if (args == 0) return;
    if (!midtrans::valid_order_id(words[1])) {
        throw usage_error("ORDER_ID: 1-50 characters of A-Z a-z 0-9 - _ ~ .");
    }
    cli.order.order_id = words[1];
    if (args == 2) {
        auto amount = midtrans::normalise_gross_amount(words[2]);
        std::uint64_t v = 0;
        if (amount) {
            auto [end, ec] = std::from_chars(amount->data(), amount->data() + amount->size(), v);
            if (ec != std::errc{} || end != amount->data() + amount->size()) amount.reset();
        }
        if (!amount || v == 0 || v > midtrans::max_gross_amount) {
            throw usage_error("AMOUNT: a positive whole number of rupiah, at most 999999999999");
        }
        cli.order.gross_amount = v;
    }
}

// --payment-type, --expiry, --wait, --show-qr (charge only), and the requests' default timeout.
void parse_request_options(const po::variables_map& vm, terminal_cli& cli) {
    const bool charging = cli.what == terminal_cli::action::charge;
    for (const char* name : {"payment-type", "expiry", "wait", "show-qr"}) {
        if (vm.count(name) && !charging)
            throw usage_error(std::string("--") + name + " is for charge");
    }
    if (vm.count("exit-after-events") && is_request(cli.what)) {
        throw usage_error("--exit-after-events is for listen");
    }
    if (!charging) return;
    if (vm.count("payment-type")) {
        auto t = midtrans::payment_type_from(vm["payment-type"].as<std::string>());
        if (!t) throw usage_error("--payment-type: expected qris or gopay");
        cli.order.type = *t;
    }
    if (vm.count("expiry")) {
        const auto& text = vm["expiry"].as<std::string>();
        std::int64_t s = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), s);
        if (ec != std::errc{} || end != text.data() + text.size() ||
            s < midtrans::min_expiry.count() || s > midtrans::max_expiry.count()) {
            throw usage_error("--expiry: whole seconds from 60 to 604800");
        }
        cli.order.expiry = std::chrono::seconds(s);
    }
    cli.wait = vm.count("wait") > 0;
    cli.show_qr = vm.count("show-qr") > 0;
}

}  // namespace

std::string_view to_string(terminal_cli::action a) noexcept {
    switch (a) {
        case terminal_cli::action::listen:
            return "listen";
        case terminal_cli::action::charge:
            return "charge";
        case terminal_cli::action::cancel:
            return "cancel";
        case terminal_cli::action::expire:
            return "expire";
        case terminal_cli::action::status:
            return "status";
        case terminal_cli::action::help:
            return "help";
        case terminal_cli::action::version:
            return "version";
    }
    return "listen";
}

bool valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

terminal_cli parse_terminal_cli(int argc, const char* const* argv) {
    // A token on the command line would show in ps and shell history: refuse it by name,
    // without echoing what follows.
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--token" || a.starts_with("--token=")) {
            throw usage_error(
                "--token is not accepted: pass the token in POSRELAY_TERMINAL_TOKEN or "
                "--token-file FILE");
        }
    }

    terminal_cli cli;
    po::options_description conn("Connection");
    conn.add_options()  //
        ("connect", po::value<std::string>()->value_name("HOST:PORT"),
         "HOST:PORT of the terminal gateway (default 127.0.0.1:7070; ws/wss: 127.0.0.1:8080)")  //
        ("transport", po::value<std::string>()->value_name("NAME"),
         "tcp | tls | ws | wss (default tcp)")  //
        ("ws-path", po::value<std::string>()->value_name("PATH"),
         "WebSocket path (default /v1/terminal)")  //
        ("tls-ca", po::value<std::string>()->value_name("FILE"),
         "PEM CA bundle to verify the server (default: system CAs)")  //
        ("tls-cert", po::value<std::string>()->value_name("FILE"),
         "PEM client certificate (with --tls-key)")  //
        ("tls-key", po::value<std::string>()->value_name("FILE"),
         "PEM client private key (with --tls-cert)")                                       //
        ("tls-insecure", "do not verify the server certificate (self-signed tests only)")  //
        ("sni", po::value<std::string>()->value_name("NAME"),
         "TLS server name (SNI and certificate check; default: the host)")  //
        ("connect-timeout", po::value<std::string>()->value_name("DUR"),
         "connect + TLS + WebSocket + hello/welcome deadline (default 10s)")  //
        ("write-timeout", po::value<std::string>()->value_name("DUR"),
         "give up on a connection whose write stalls this long (default 10s)")  //
        ("backoff-min", po::value<std::string>()->value_name("DUR"),
         "first reconnect delay (default 250ms; doubles, jittered)")  //
        ("backoff-max", po::value<std::string>()->value_name("DUR"),
         "reconnect delay cap (default 30s)")  //
        ("backoff-reset", po::value<std::string>()->value_name("DUR"),
         "the backoff starts over after a connection lived this long (default 60s)")  //
        ("once", "do not reconnect: exit when the connection ends");

    po::options_description term("Terminal");
    term.add_options()                                                                      //
        ("terminal", po::value<std::string>()->value_name("ID"), "terminal id (required)")  //
        ("store", po::value<std::string>()->value_name("ID"), "store id (required)")        //
        ("token-file", po::value<std::string>()->value_name("FILE"),
         "file holding the token (default: POSRELAY_TERMINAL_TOKEN)")  //
        ("subscribe-store",
         "also receive the events of the whole store (subscribe:[\"store\"])")  //
        ("observe",
         "watch the terminal without taking over its connection: needs a token with the "
         "observe claim (posrelay token ... --observe); listen only; exits 1 when the server "
         "did not open an observer session")  //
        ("state-file", po::value<std::string>(),
         "keeps the last processed seq (read at start, sent as resume_from; replaced "
         "atomically)")  //
        ("resume-from", po::value<std::uint64_t>()->value_name("SEQ"),
         "resume after this seq at the first connection (overrides --state-file)")  //
        ("ack-every", po::value<std::uint64_t>()->value_name("N"),
         "send a cumulative ack every N events (default 1)")  //
        ("ack-flush", po::value<std::string>()->value_name("DUR"),
         "with --ack-every: also ack what is pending after this long without events (default "
         "100ms; 0: never)")                                           //
        ("no-ack", "never ack (events stay in flight on the server)")  //
        ("no-read-after-welcome",
         "after the welcome, stop reading the socket entirely (slow-consumer tests); a ping is "
         "still sent every heartbeat_ms");

    po::options_description run("Run");
    run.add_options()  //
        ("exit-after-events", po::value<std::uint64_t>()->value_name("N"),
         "exit 0 after N events (acked first)")  //
        ("timeout", po::value<std::string>()->value_name("DUR"),
         "give up after this long (exit 3), e.g. 30s (requests: default 60s; charge --wait: "
         "the expiry + 60s)")  //
        ("log-level", po::value<std::string>()->value_name("LEVEL"),
         "debug | info | warn | error (default info; debug logs every frame but events)")  //
        ("help,h", "show this help")                                                       //
        ("version", "show the version");

    po::options_description req("Requests (charge)");
    req.add_options()  //
        ("payment-type", po::value<std::string>()->value_name("TYPE"),
         "qris | gopay (default qris)")  //
        ("expiry", po::value<std::string>()->value_name("SECONDS"),
         "the charge expires after this many seconds, 60 to 604800 (default: Midtrans's, 15 "
         "minutes)")  //
        ("wait",
         "after the result, print the order's events until it is paid (exit 0) or final "
         "unpaid (exit 6)")  //
        ("show-qr", "draw the QR code on stderr even when it is not a terminal");

    po::options_description hidden;
    hidden.add_options()("command", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("command", -1);

    po::options_description all;
    all.add(conn).add(term).add(req).add(run).add(hidden);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(e.what());
    }

    if (vm.count("help")) {
        std::ostringstream out;
        po::options_description visible;
        visible.add(conn).add(term).add(req).add(run);
        out << usage_text << visible << exit_text;
        cli.what = terminal_cli::action::help;
        cli.help_text = out.str();
        return cli;
    }
    if (vm.count("version")) {
        cli.what = terminal_cli::action::version;
        return cli;
    }

    auto commands = vm.count("command") ? vm["command"].as<std::vector<std::string>>()
                                        : std::vector<std::string>{};
    parse_command(commands, cli);
    parse_request_options(vm, cli);

    auto str = [&](const char* name, std::string& out) {
        if (vm.count(name)) out = vm[name].as<std::string>();
    };
    if (vm.count("connect")) {
        try {
            cli.connect = parse_endpoint(vm["connect"].as<std::string>());
        } catch (const std::invalid_argument& e) {
            throw usage_error(std::string("--connect: ") + e.what());
        }
        if (cli.connect.port == 0) throw usage_error("--connect: port 0");
    }
    if (vm.count("transport")) {
        auto t = parse_transport(vm["transport"].as<std::string>());
        if (!t) throw usage_error("--transport: expected tcp, tls, ws or wss");
        cli.kind = *t;
        // WebSocket lives on the HTTP port.
        if (!vm.count("connect") && uses_websocket(cli.kind)) cli.connect.port = 8080;
    }
    str("ws-path", cli.ws_path);
    if (cli.ws_path.empty() || cli.ws_path.front() != '/') {
        throw usage_error("--ws-path must start with '/'");
    }
    str("tls-ca", cli.tls_ca);
    str("tls-cert", cli.tls_cert);
    str("tls-key", cli.tls_key);
    str("sni", cli.sni);
    cli.tls_insecure = vm.count("tls-insecure") > 0;
    const bool tls_flags = !cli.tls_ca.empty() || !cli.tls_cert.empty() || !cli.tls_key.empty() ||
                           cli.tls_insecure || !cli.sni.empty();
    if (tls_flags && !uses_tls(cli.kind)) {
        throw usage_error("--tls-* and --sni need --transport tls or wss");
    }
    if (cli.tls_cert.empty() != cli.tls_key.empty()) {
        throw usage_error("--tls-cert and --tls-key go together");
    }

    str("terminal", cli.terminal_id);
    str("store", cli.store_id);
    if (cli.terminal_id.empty()) throw usage_error("--terminal is required");
    if (cli.store_id.empty()) throw usage_error("--store is required");
    if (!valid_id(cli.terminal_id)) {
        throw usage_error("--terminal: 1-64 characters of A-Z a-z 0-9 - _ .");
    }
    if (!valid_id(cli.store_id)) throw usage_error("--store: 1-64 characters of A-Z a-z 0-9 - _ .");
    str("token-file", cli.token_file);
    cli.subscribe_store = vm.count("subscribe-store") > 0;
    cli.observe = vm.count("observe") > 0;
    if (cli.observe && cli.what != terminal_cli::action::listen)
        throw usage_error("--observe is for listen");
    if (cli.observe && cli.subscribe_store)
        throw usage_error("--observe cannot change the till's store subscription");
    str("state-file", cli.state_file);
    if (vm.count("resume-from")) cli.resume_from = vm["resume-from"].as<std::uint64_t>();
    if (vm.count("ack-every")) {
        cli.ack_every = vm["ack-every"].as<std::uint64_t>();
        if (cli.ack_every == 0) throw usage_error("--ack-every must be at least 1");
    }
    cli.no_ack = vm.count("no-ack") > 0;
    cli.read_after_welcome = vm.count("no-read-after-welcome") == 0;

    cli.once = vm.count("once") > 0;
    if (vm.count("exit-after-events")) {
        cli.exit_after_events = vm["exit-after-events"].as<std::uint64_t>();
        if (*cli.exit_after_events == 0)
            throw usage_error("--exit-after-events must be at least 1");
    }
    if (vm.count("timeout")) {
        cli.timeout = duration_option(vm, "timeout", {});
        if (cli.timeout->count() == 0) throw usage_error("--timeout must be positive");
    } else if (is_request(cli.what)) {
        // A request is bounded even when the server never answers; --wait lasts at most
        // until the order expires (Midtrans's default: 15 minutes), plus a margin.
        cli.timeout = std::chrono::seconds(60);
        if (cli.wait) *cli.timeout += cli.order.expiry.value_or(std::chrono::minutes(15));
    }
    cli.connect_timeout = duration_option(vm, "connect-timeout", cli.connect_timeout);
    cli.write_timeout = duration_option(vm, "write-timeout", cli.write_timeout);
    cli.backoff_min = duration_option(vm, "backoff-min", cli.backoff_min);
    cli.backoff_max = duration_option(vm, "backoff-max", cli.backoff_max);
    cli.backoff_reset = duration_option(vm, "backoff-reset", cli.backoff_reset);
    cli.ack_flush = duration_option(vm, "ack-flush", cli.ack_flush);
    if (cli.connect_timeout.count() == 0) throw usage_error("--connect-timeout must be positive");
    if (cli.write_timeout.count() == 0) throw usage_error("--write-timeout must be positive");
    if (cli.backoff_max < cli.backoff_min)
        throw usage_error("--backoff-max is below --backoff-min");
    if (vm.count("log-level")) {
        auto l = log::parse_level(vm["log-level"].as<std::string>());
        if (!l) throw usage_error("--log-level: expected debug, info, warn or error");
        cli.log_level = *l;
    }
    return cli;
}

std::string load_token(const std::string& token_file, const char* env_value) {
    std::string token;
    if (!token_file.empty()) {
        int fd = ::open(token_file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            throw usage_error("--token-file " + token_file + ": " + std::strerror(errno));
        }
        char buf[1024];
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                int err = errno;
                ::close(fd);
                throw usage_error("--token-file " + token_file + ": " + std::strerror(err));
            }
            if (n == 0) break;
            token.append(buf, static_cast<std::size_t>(n));
            if (token.size() > 4096) {
                ::close(fd);
                throw usage_error("--token-file " + token_file + ": too large for a token");
            }
        }
        ::close(fd);
        token = std::string(trim(token));
        if (token.empty()) throw usage_error("--token-file " + token_file + " is empty");
        return token;
    }
    if (env_value != nullptr) token = std::string(trim(env_value));
    if (token.empty()) {
        throw usage_error(std::string("no token: set ") + token_env + " or pass --token-file FILE");
    }
    return token;
}

}  // namespace posrelay::tools
