// The terminal wire protocol, version 1 (proto-docs/terminal-protocol.md): parsing of the
// frames a terminal sends and building of the frames posrelay sends. Pure code, no I/O.
// A frame is one JSON object: a line ending in '\n' on TCP/TLS, a text message on WebSocket.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace posrelay::fanout {

inline constexpr int protocol_version = 1;

// Stable error codes of the `error` frame (the `code` field). Never renumber or rename:
// clients switch on the names.
enum class errc : std::uint8_t {
    bad_frame,             // not JSON, not an object, a field missing or of the wrong type
    frame_too_large,       // longer than the negotiated max_frame_bytes
    unknown_op,            // an `op` this version does not know
    unsupported_version,   // hello.v is not a version the server speaks
    handshake_required,    // the first frame was not hello (or hello came twice)
    handshake_timeout,     // no hello within the handshake timeout
    bad_token,             // the token does not match terminal_id and store_id
    rate_limited,          // too many failed handshakes from this address
    too_many_connections,  // the server is at its connection limit
    resume_gap,            // resume_from is older than what the server still keeps
    bad_ack,               // ack.seq is beyond the last event sent
    slow_consumer,         // the terminal does not read fast enough: disconnected
    idle_timeout,          // nothing received within the heartbeat deadline
    replaced,              // another connection of the same terminal took over
    bad_request,           // a request (charge, cancel, ...) with invalid fields (non-fatal)
    unavailable,           // the store or Midtrans is unreachable (non-fatal, retry)
    internal_error,
    order_exists,     // charge: the order_id is already in use (non-fatal)
    order_not_found,  // cancel/expire/status: no such order in this terminal's store
    midtrans_error,   // Midtrans refused the call: status_code and status_message attached
    busy,             // too many requests in flight on this connection (non-fatal, retry)
    resync,  // the terminal's position is in an old epoch (or was lost): re-read order status,
             // then reconnect in the epoch the frame names from seq 0 (fatal)
    token_expired,  // the token's exp (plus the allowed clock skew) has passed: get a new one
    revoked,  // the token was issued at or before its terminal's (or store's) revocation (fatal;
              // reconnecting with the same token is refused again: a new token is needed)
    disconnected,        // an operator ended this session (fatal); reconnect after a pause
    too_many_observers,  // the terminal has the most observer sessions allowed (fatal)
};
[[nodiscard]] std::string_view to_string(errc e) noexcept;

// ---- client → server ------------------------------------------------------------------

struct hello_frame {
    int version = 0;
    std::string terminal_id;
    std::string store_id;
    std::string token;
    std::optional<std::uint64_t> resume_from;  // last seq the terminal has processed
    bool subscribe_store = false;              // "subscribe":["store"]
    // The epoch of resume_from (§8); "" when the client has none yet. Absent (nullopt): a
    // client that does not know epochs, told resume_gap where others are told resync.
    std::optional<std::string> epoch;
    std::optional<std::uint64_t> resume_eid;  // the eid of the client's event at resume_from
};
struct ack_frame {
    std::uint64_t seq = 0;
};
struct ping_frame {
    std::string id;  // echoed in the pong; may be empty
};
struct pong_frame {};
// A request the terminal makes (charge, cancel, expire, status: the charge-flow issue).
// Kept raw here: its fields are validated by whoever handles the op.
struct request_frame {
    std::string op;
    std::string id;    // the request id, echoed in the answer
    std::string json;  // the whole frame
    // Not empty when the id is invalid (not a string, over 64 bytes, twice): the request is
    // answered by a non-fatal bad_request without id (§13), the connection stays open.
    std::string id_error;
};

enum class frame_kind : std::uint8_t { hello, ack, ping, pong, request };

struct client_frame {
    frame_kind kind = frame_kind::ping;
    hello_frame hello;
    ack_frame ack;
    ping_frame ping;
    request_frame request;
};

struct parse_failure {
    errc code = errc::bad_frame;
    std::string message;  // for the error frame; never echoes a token
};

// True when `id` is a valid terminal_id or store_id: 1-64 of A-Z a-z 0-9 . _ -
[[nodiscard]] bool valid_id(std::string_view id) noexcept;
// True when `e` may be an epoch: at most 24 of 0-9 a-z ("" included: none yet).
[[nodiscard]] bool valid_epoch(std::string_view e) noexcept;

// Ops accepted as requests (forwarded as request_frame), besides hello/ack/ping/pong.
inline constexpr std::string_view request_ops[] = {"charge", "cancel", "expire", "status"};

// Parses one frame (without its '\n'). `frame` must be readable up to
// frame.size() + SIMDJSON_PADDING bytes. Ids (terminal_id, store_id) must be 1-64 of
// A-Z a-z 0-9 - _ . ; the token at most 2048 bytes (a JWT); unknown fields are ignored.
// Returns false and fills `err` on failure. Never throws.
class frame_parser {
public:
    explicit frame_parser(std::size_t max_frame_bytes);
    [[nodiscard]] bool parse(simdjson::padded_string_view frame, client_frame& out,
                             parse_failure& err);

private:
    simdjson::ondemand::parser parser_;
    std::size_t max_frame_bytes_;
};

// ---- server → client ------------------------------------------------------------------
// Each returns a complete frame including the trailing '\n' (WebSocket strips it).

struct welcome_info {
    std::string terminal_id;
    std::string store_id;
    std::uint64_t last_seq = 0;                // the terminal's newest event seq in the store
    std::string epoch;                         // the epoch last_seq counts in
    std::optional<std::uint64_t> resume_from;  // echoed
    std::uint64_t heartbeat_ms = 0;
    std::uint64_t max_frame_bytes = 0;
    std::uint64_t max_inflight = 0;  // events sent but not acked, at most
    bool subscribe_store = false;
    std::string node;       // the server node's name, for debugging
    bool observer = false;  // an observer session (§17): "observer":true, else absent
};
[[nodiscard]] std::string welcome_frame(const welcome_info& w);
// An event frame from the stored event JSON (an object with seq, order_id, ...): adds
// "op":"event" in front. `event_json` must be a JSON object.
[[nodiscard]] std::string event_frame(std::string_view event_json);
[[nodiscard]] std::string error_frame(errc code, std::string_view message, bool fatal,
                                      std::string_view request_id = {},
                                      std::string_view extra_members = {});
// The `resync` error (fatal): the epoch to reconnect in and its last_seq.
[[nodiscard]] std::string resync_frame(std::string_view epoch, std::uint64_t last_seq);
// `extra_members`: more members for the error object, already JSON (`"a":1,"b":"x"`).
[[nodiscard]] std::string ping_server_frame();
[[nodiscard]] std::string pong_frame_for(std::string_view id);
[[nodiscard]] std::string goaway_frame(std::string_view reason, std::uint64_t reconnect_after_ms);

// ---- tokens ---------------------------------------------------------------------------
// JWTs (the current tokens): fanout/token_verifier.hpp. v1 tokens, still accepted while
// --terminal-token-v1 is true: token = "v1." + lowercase hex HMAC-SHA256(secret,
// "posrelay-terminal-v1\n" + terminal_id
// + "\n" + store_id). Verifiable without any store round trip; `posrelay token` mints them.

[[nodiscard]] std::string mint_token(std::string_view secret, std::string_view terminal_id,
                                     std::string_view store_id);
// Constant-time comparison against the expected token.
[[nodiscard]] bool verify_token(std::string_view secret, std::string_view terminal_id,
                                std::string_view store_id, std::string_view token);

// ---- delivery -------------------------------------------------------------------------

// The per-connection delivery state: which seqs were sent and acked, and what to do with
// an event from the live feed, so that the switch from replay to live has no gap and no
// duplicate. Pure; the session executes the actions.
//
// Invariants: acked <= sent; events go out strictly in seq order, each once per connection.
class delivery_fsm {
public:
    // `start_after`: resume_from, or the terminal's last_seq when it did not ask to resume
    // (only new events then). `max_inflight`: sent-but-unacked events allowed.
    delivery_fsm(std::uint64_t start_after, std::uint64_t max_inflight);

    enum class action : std::uint8_t {
        send,   // send the event now (and call on_sent)
        drop,   // already sent on this connection
        fetch,  // missing events first: fetch [fetch_from, fetch_to] from the stream, then retry
        wait,   // too many unacked: hold until acks arrive (then call next_wanted)
    };
    struct decision {
        action what = action::drop;
        std::uint64_t fetch_from = 0;
        std::uint64_t fetch_to = 0;
    };
    // An event with `seq` is available (live, or fetched).
    [[nodiscard]] decision offer(std::uint64_t seq) const noexcept;
    void on_sent(std::uint64_t seq) noexcept;
    // Cumulative ack; false when seq > sent (bad_ack).
    [[nodiscard]] bool on_ack(std::uint64_t seq) noexcept;

    // The seq to send next (sent + 1): what to offer again after a wait, once acks came.
    [[nodiscard]] std::uint64_t next_wanted() const noexcept { return sent_ + 1; }
    [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }
    [[nodiscard]] std::uint64_t acked() const noexcept { return acked_; }
    [[nodiscard]] std::uint64_t inflight() const noexcept { return sent_ - acked_; }
    [[nodiscard]] bool can_send() const noexcept { return inflight() < max_inflight_; }

private:
    std::uint64_t sent_;
    std::uint64_t acked_;
    std::uint64_t max_inflight_;
};

}  // namespace posrelay::fanout
