// The "posrelay.redis" error category: posrelay's own Redis connection errors.
#include <string>

#include "posrelay/store/redis_connection.hpp"

namespace posrelay::store {

namespace {

// boost::system::error_category's destructor is protected and non-virtual by design (categories
// are never deleted through a base pointer), which -Wnon-virtual-dtor flags anyway.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class redis_category_impl final : public boost::system::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "posrelay.redis"; }
    [[nodiscard]] std::string message(int ev) const override {
        switch (static_cast<redis_errc>(ev)) {
            case redis_errc::not_connected:
                return "not connected to Redis";
            case redis_errc::timeout:
                return "Redis command timed out";
            case redis_errc::queue_full:
                return "too many Redis commands pending";
            case redis_errc::connection_lost:
                return "Redis connection lost before the reply (the command may have run)";
            case redis_errc::protocol_error:
                return "malformed Redis reply";
            case redis_errc::stopped:
                return "Redis connection stopped";
            case redis_errc::replicas_not_acknowledged:
                return "too few Redis replicas acknowledged the write in time";
        }
        return "unknown Redis error " + std::to_string(ev);
    }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& redis_category() noexcept {
    static const redis_category_impl category;
    return category;
}

boost::system::error_code make_error_code(redis_errc e) noexcept {
    return {static_cast<int>(e), redis_category()};
}

}  // namespace posrelay::store
