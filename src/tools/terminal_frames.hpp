// The client side of the terminal protocol v1 (proto-docs/terminal-protocol.md): frames a
// terminal sends, parsing of the frames posrelay sends, token minting, and what to do when
// a connection ends. Pure code, no I/O: shared by posrelay-terminal, the load tool and tests.
#pragma once

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "posrelay/midtrans/api.hpp"

namespace posrelay::tools {

inline constexpr int terminal_protocol_version = 1;
inline constexpr std::size_t default_max_frame_bytes = 16384;
inline constexpr std::chrono::milliseconds default_heartbeat{15'000};
inline constexpr std::string_view default_ws_path = "/v1/terminal";

// How frames travel: newline-delimited JSON over TCP or TLS, or WebSocket text messages.
enum class transport : std::uint8_t { tcp, tls, ws, wss };
[[nodiscard]] std::optional<transport> parse_transport(std::string_view s) noexcept;
[[nodiscard]] std::string_view to_string(transport t) noexcept;
[[nodiscard]] constexpr bool uses_tls(transport t) noexcept {
    return t == transport::tls || t == transport::wss;
}
[[nodiscard]] constexpr bool uses_websocket(transport t) noexcept {
    return t == transport::ws || t == transport::wss;
}

// ---- client → server (each without the trailing '\n') --------------------------------

struct hello_params {
    std::string terminal_id;
    std::string store_id;
    std::string token;  // a secret: never logged
    std::optional<std::uint64_t> resume_from;
    bool subscribe_store = false;
    // The epoch resume_from counts in ("" when none yet): sent whenever set, telling the
    // server this client handles `resync`. resume_eid: the eid of the event at resume_from.
    std::optional<std::string> epoch;
    std::string resume_eid;
};
[[nodiscard]] std::string hello_json(const hello_params& h);
[[nodiscard]] std::string ack_json(std::uint64_t seq);
[[nodiscard]] std::string ping_json(std::string_view id);
[[nodiscard]] std::string pong_json();
// Requests (protocol §13); `id` is echoed in the answer.
[[nodiscard]] std::string charge_json(const midtrans::charge_request& r, std::string_view id);
// cancel, expire or status of one order.
[[nodiscard]] std::string order_request_json(std::string_view op, std::string_view id,
                                             std::string_view order_id);

// ---- server → client ------------------------------------------------------------------

enum class server_op : std::uint8_t { welcome, event, error, ping, pong, goaway, result, other };

struct welcome_info {
    std::string terminal_id;
    std::string store_id;
    std::uint64_t last_seq = 0;
    std::string epoch;  // "" from a server without epochs
    std::optional<std::uint64_t> resume_from;
    std::chrono::milliseconds heartbeat = default_heartbeat;
    std::size_t max_frame_bytes = default_max_frame_bytes;
    std::uint64_t max_inflight = 0;  // 0: not announced
    bool subscribe_store = false;
    std::string node;
    bool observer = false;  // "observer":true: an observer session (protocol §17)
};
// An event's status_conflict (protocol §7): an update changing whether the order is paid came
// against the transition table; Midtrans was asked and `applied` says whether it agreed.
struct conflict_info {
    std::string previous_status;  // the order's status before
    std::string claimed_status;   // what the notification said
    std::string midtrans_status;  // what GET status said ("" when Midtrans knew no such order)
    bool applied = false;         // the event's status is Midtrans's (else it is unchanged)
};
struct event_info {
    std::uint64_t seq = 0;
    std::optional<std::int64_t> event_time_ms;  // wall clock, ms since the epoch
    std::string order_id;
    std::string transaction_status;
    std::string terminal_id;
    std::string store_id;
    std::string epoch;  // the epoch seq counts in
    std::string eid;    // differs between two events of the same seq (send it as resume_eid)
    bool paid = false;  // the goods may be handed over
    std::optional<conflict_info> conflict;
};
// The answer to a request: the fields the client acts on (the frame has more).
struct result_info {
    std::string request;  // charge, cancel, expire, status
    std::string order_id;
    std::string transaction_status;  // "" when null (status of an order with no status yet)
    bool paid = false;               // status
    std::string gross_amount;        // charge, status
    std::string payment_type;
    std::string qr_code_url;
    std::string qr_string;
    std::string deeplink;
    std::string expiry_time;
};
struct error_info {
    std::string code;
    std::string message;
    bool fatal = false;
    std::string id;              // the request id for answers to requests; "" otherwise
    std::string epoch;           // resync: the epoch to reconnect in (from seq 0)
    std::uint64_t last_seq = 0;  // resync: its newest seq
};
struct goaway_info {
    std::string reason;
    std::chrono::milliseconds reconnect_after{0};
};

struct server_frame {
    server_op op = server_op::other;
    std::string op_name;  // as received (for `other`: an answer to a request, a newer op)
    std::string id;       // "id" when present (pong, answers)
    welcome_info welcome;
    event_info event;
    error_info error;
    goaway_info goaway;
    result_info result;
};

// Parses one frame (without '\n'). Unknown fields are ignored; unknown ops parse as
// server_op::other. Returns false with a reason when the frame is not a JSON object with a
// string "op", or when a known op lacks a required field or has one of the wrong type.
[[nodiscard]] bool parse_server_frame(std::string_view text, server_frame& out, std::string& error);

// ---- tokens ---------------------------------------------------------------------------

// "v1." + lowercase hex HMAC-SHA256(secret, "posrelay-terminal-v1\n" + terminal_id + "\n" +
// store_id): what `posrelay token T S` prints. Throws std::runtime_error if OpenSSL fails.
[[nodiscard]] std::string mint_token(std::string_view secret, std::string_view terminal_id,
                                     std::string_view store_id);

// ---- how a connection ended, and what to do next --------------------------------------

struct outcome {
    enum class kind : std::uint8_t {
        closed,             // close()/abort() was called
        connect_failed,     // DNS, TCP connect, TLS or WebSocket handshake failed
        handshake_failed,   // hello written, but no welcome (timeout, EOF, bad frame)
        connection_lost,    // read/write error or EOF after the welcome
        heartbeat_timeout,  // nothing heard for 3 × heartbeat_ms
        write_timeout,      // a write did not complete within the write timeout
        protocol_error,     // the server sent something we cannot parse or did not expect
        server_error,       // an error frame with fatal:true (see `error`)
        goaway,             // the server asked us to reconnect later (see `goaway`)
    };
    kind what = kind::closed;
    bool welcomed = false;  // the connection got as far as the welcome
    boost::system::error_code ec;
    std::string detail;  // human-readable; never contains the token
    error_info error;
    goaway_info goaway;
};
[[nodiscard]] std::string_view to_string(outcome::kind k) noexcept;

enum class next_step : std::uint8_t {
    stop,             // we closed it ourselves
    reconnect,        // transient: reconnect after a backoff delay
    reconnect_after,  // goaway: reconnect after goaway.reconnect_after (plus jitter)
    resync,           // resume_gap: forget the resume point, reconnect without resume_from
    new_epoch,        // resync: re-read open orders' status; reconnect in error.epoch from 0
    give_up,          // permanent (bad_token, unsupported_version, ...): retrying cannot help
};
[[nodiscard]] next_step classify(const outcome& o) noexcept;
// Fatal error codes after which the same hello cannot succeed: bad_token,
// unsupported_version, replaced, and the codes that mean a bug in this client (bad_frame,
// frame_too_large, unknown_op, handshake_required, bad_ack). Other codes, unknown ones
// included, are followed by a reconnect with backoff (resume_gap: a resync).
[[nodiscard]] bool is_permanent_error_code(std::string_view code) noexcept;
// The least delay before the next attempt whatever the backoff says: 60 s after
// rate_limited, else 0.
[[nodiscard]] std::chrono::milliseconds minimum_delay(const outcome& o) noexcept;

}  // namespace posrelay::tools
