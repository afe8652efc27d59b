// Command line of posrelay-terminal: options, validation and the token source (environment
// or file, never argv). Pure code, so that tests can check parsing without a server.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "posrelay/config.hpp"
#include "posrelay/log.hpp"
#include "posrelay/midtrans/api.hpp"
#include "tools/terminal_frames.hpp"

namespace posrelay::tools {

inline constexpr const char* token_env = "POSRELAY_TERMINAL_TOKEN";

// A usage error; what() never contains a token.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct terminal_cli {
    // listen: print events until stopped. charge, cancel, expire, status: one request on the
    // terminal protocol (§13), its answer printed, events handled as in listen meanwhile.
    enum class action : std::uint8_t { listen, charge, cancel, expire, status, help, version };
    action what = action::listen;
    std::string help_text;  // for action::help

    // Requests: the order (all), and for charge its amount, payment type and expiry.
    midtrans::charge_request order;
    bool wait = false;     // charge --wait: keep listening until the order is paid or final
    bool show_qr = false;  // charge --show-qr: draw the QR on stderr even when not a tty

    endpoint connect{"127.0.0.1", 7070};  // ws/wss without --connect: 127.0.0.1:8080
    transport kind = transport::tcp;
    std::string ws_path{default_ws_path};
    std::string tls_ca;
    std::string tls_cert;
    std::string tls_key;
    bool tls_insecure = false;
    std::string sni;

    std::string terminal_id;
    std::string store_id;
    std::string token_file;  // "": POSRELAY_TERMINAL_TOKEN
    bool subscribe_store = false;
    // --observe: watch the terminal as an observer (a token with the observe claim); listen
    // only; the run ends (fatal) when the server did not open an observer session.
    bool observe = false;

    std::string state_file;
    std::optional<std::uint64_t> resume_from;  // --resume-from: overrides the state file
    std::uint64_t ack_every = 1;
    // With --ack-every N > 1: ack what is pending once no event came for this long (the
    // protocol asks for prompt acks after a quiet spell); 0: strictly every N.
    std::chrono::milliseconds ack_flush{100};
    bool no_ack = false;
    bool read_after_welcome = true;

    bool once = false;
    std::optional<std::uint64_t> exit_after_events;
    std::optional<std::chrono::milliseconds> timeout;
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds write_timeout{10'000};
    std::chrono::milliseconds backoff_min{250};
    std::chrono::milliseconds backoff_max{30'000};
    // The backoff starts over after a connection that lived this long after its welcome.
    std::chrono::milliseconds backoff_reset{60'000};
    log::level log_level = log::level::info;
};

// Exit codes of posrelay-terminal (also listed by --help).
namespace exit_code {
inline constexpr int ok = 0;     // --exit-after-events reached, SIGINT/SIGTERM, goaway with --once
inline constexpr int fatal = 1;  // fatal server error (bad_token, ...) or local failure
inline constexpr int usage = 2;  // bad command line, no token, unreadable state file
inline constexpr int timeout = 3;       // --timeout expired first
inline constexpr int disconnected = 4;  // --once and the connection failed or was lost;
                                        // requests: lost after sending (outcome unknown)
inline constexpr int refused = 5;       // a request was answered with an error frame
inline constexpr int not_paid = 6;      // charge --wait: the order ended unpaid
}  // namespace exit_code

[[nodiscard]] constexpr bool is_request(terminal_cli::action a) noexcept {
    using enum terminal_cli::action;
    return a == charge || a == cancel || a == expire || a == status;
}
[[nodiscard]] std::string_view to_string(terminal_cli::action a) noexcept;

// Parses argv (argv[0] is the program). Throws usage_error.
[[nodiscard]] terminal_cli parse_terminal_cli(int argc, const char* const* argv);

// The token: the contents of `token_file` (surrounding whitespace removed) when set, else
// `env_value` (POSRELAY_TERMINAL_TOKEN; may be null). Throws usage_error when neither gives
// a non-empty token or the file cannot be read.
[[nodiscard]] std::string load_token(const std::string& token_file, const char* env_value);

// A terminal or store id: 1-64 of A-Z a-z 0-9 - _ . (what the server accepts).
[[nodiscard]] bool valid_id(std::string_view id) noexcept;

}  // namespace posrelay::tools
