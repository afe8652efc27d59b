// memory_commit_sink: the commit rules of the Redis store (dedup on order + status + fraud,
// then the transition check) held in process memory, plus to_string(commit_outcome).
#include "posrelay/ingest/memory_commit_sink.hpp"

#include <utility>

namespace posrelay::ingest {

std::string_view to_string(commit_outcome o) noexcept {
    switch (o) {
        case commit_outcome::new_update:
            return "new";
        case commit_outcome::duplicate:
            return "duplicate";
        case commit_outcome::stale:
            return "stale";
        case commit_outcome::confirming:
            return "confirming";
        case commit_outcome::refused:
            return "refused";
    }
    return "unknown";
}

namespace {

// order_id \0 transaction_status \0 fraud_status-or-empty: NUL cannot occur in the names,
// so distinct triples give distinct keys.
std::string dedup_key(const status_update& u) {
    const auto order = u.order_id();
    const auto status = midtrans::to_string(u.status);
    const auto fraud = u.fraud ? midtrans::to_string(*u.fraud) : std::string_view{};
    std::string key;
    key.reserve(order.size() + status.size() + fraud.size() + 2);
    key.append(order).push_back('\0');
    key.append(status).push_back('\0');
    key.append(fraud);
    return key;
}

}  // namespace

boost::asio::awaitable<commit_result> memory_commit_sink::commit(status_update u) {
    co_return commit_now(std::move(u));
}

// With mutex_ held: the order's binding (created empty).
memory_commit_sink::binding& memory_commit_sink::binding_of(std::string_view order_id) {
    auto it = bindings_.find(order_id);
    if (it == bindings_.end()) it = bindings_.emplace(std::string{order_id}, binding{}).first;
    return it->second;
}

// With mutex_ held. Mirrors check_binding of the order script: the update's mismatch with
// the order's binding (none: then the first signer seen is recorded).
binding_mismatch memory_commit_sink::check_and_bind(const status_update& u) {
    binding& b = binding_of(u.order_id());
    const auto m =
        check_binding({b.signer, b.gross_amount, b.transaction_id},
                      {u.signer, u.get(field::gross_amount), u.get(field::transaction_id)});
    if (m == binding_mismatch::none && b.signer.empty()) b.signer = u.signer;
    return m;
}

// With mutex_ held: a new update's amount and transaction become the order's (as the
// script's HSET of the update's fields does).
void memory_commit_sink::bind_fields(const status_update& u) {
    binding& b = binding_of(u.order_id());
    if (u.has(field::gross_amount)) b.gross_amount = u.get(field::gross_amount);
    if (u.has(field::transaction_id)) b.transaction_id = u.get(field::transaction_id);
}

// The binding first (a refused update changes nothing), then dedup (an exact repeat is a
// duplicate whatever the state), then the transition table decides; only a forward move
// changes the state and is recorded.
commit_result memory_commit_sink::commit_now(status_update u) {
    auto key = dedup_key(u);
    const std::lock_guard lock{mutex_};
    commit_result result;
    result.mismatch = check_and_bind(u);
    if (result.mismatch != binding_mismatch::none) {
        result.outcome = commit_outcome::refused;
    } else if (seen_.contains(key)) {
        result.outcome = commit_outcome::duplicate;
    } else {
        std::optional<midtrans::order_state> stored;
        const auto order = orders_.find(u.order_id());
        if (order != orders_.end()) stored = order->second;
        switch (midtrans::classify(stored, u.state())) {
            case midtrans::transition::forward:
                result.outcome = commit_outcome::new_update;
                bind_fields(u);
                if (order != orders_.end()) {
                    order->second = u.state();
                } else {
                    orders_.emplace(std::string{u.order_id()}, u.state());
                }
                seen_.insert(std::move(key));
                committed_.push_back(std::move(u));
                result.event_id = std::to_string(committed_.size());
                break;
            case midtrans::transition::duplicate:
                result.outcome = commit_outcome::duplicate;
                break;
            case midtrans::transition::stale:
                result.outcome = commit_outcome::stale;
                break;
        }
    }
    ++counts_[static_cast<std::size_t>(result.outcome)];
    return result;
}

std::vector<status_update> memory_commit_sink::committed() const {
    const std::lock_guard lock{mutex_};
    return {committed_.begin(), committed_.end()};
}

std::optional<midtrans::order_state> memory_commit_sink::state_of(std::string_view order_id) const {
    const std::lock_guard lock{mutex_};
    const auto it = orders_.find(order_id);
    if (it == orders_.end()) return std::nullopt;
    return it->second;
}

std::size_t memory_commit_sink::count(commit_outcome o) const {
    const auto i = static_cast<std::size_t>(o);
    const std::lock_guard lock{mutex_};
    return i < std::size(counts_) ? counts_[i] : 0;
}

}  // namespace posrelay::ingest
