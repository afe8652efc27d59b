// An in-process commit_sink: same binding, dedup and transition rules as the Redis store, kept
// in memory (lost on exit). Used by tests, benchmarks and `--store memory`.
#pragma once

#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "posrelay/ingest/commit_sink.hpp"
#include "posrelay/midtrans/transaction_status.hpp"

namespace posrelay::ingest {

class memory_commit_sink final : public commit_sink {
public:
    [[nodiscard]] boost::asio::awaitable<commit_result> commit(status_update u) override;
    [[nodiscard]] bool ready() const noexcept override { return true; }

    // Synchronous core of commit(), for tests and benchmarks. Thread-safe.
    commit_result commit_now(status_update u);

    // Inspection, for tests. Thread-safe; return copies.
    [[nodiscard]] std::vector<status_update> committed() const;  // the new updates, in commit order
    [[nodiscard]] std::optional<midtrans::order_state> state_of(std::string_view order_id) const;
    [[nodiscard]] std::size_t count(commit_outcome o) const;

private:
    // Hash lookups (not trees) and a deque (no copy on growth): the benchmark commits
    // hundreds of thousands of updates under this mutex.
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    // What each order is bound to (order_binding's fields, owned).
    struct binding {
        std::string signer, gross_amount, transaction_id;
    };
    binding& binding_of(std::string_view order_id);
    binding_mismatch check_and_bind(const status_update& u);
    void bind_fields(const status_update& u);

    mutable std::mutex mutex_;
    std::unordered_map<std::string, midtrans::order_state, string_hash, std::equal_to<>> orders_;
    std::unordered_map<std::string, binding, string_hash, std::equal_to<>> bindings_;
    std::unordered_set<std::string> seen_;  // dedup keys
    std::deque<status_update> committed_;
    std::size_t counts_[commit_outcome_count] = {};  // by commit_outcome
};

}  // namespace posrelay::ingest
