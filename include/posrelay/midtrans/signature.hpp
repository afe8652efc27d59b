// Midtrans notification signatures: lowercase hex SHA-512 of
// order_id + status_code + gross_amount + server_key, compared in constant time.
#pragma once

#include <array>
#include <string_view>

namespace posrelay::midtrans {

// Length of a signature_key: 64 bytes of SHA-512 as lowercase hex.
inline constexpr std::size_t signature_hex_size = 128;

using signature_hex = std::array<char, signature_hex_size>;

// Computes the signature over the four strings exactly as given (no re-formatting of
// gross_amount). Uses a per-thread reusable OpenSSL digest context; thread-safe.
[[nodiscard]] signature_hex compute_signature(std::string_view order_id,
                                              std::string_view status_code,
                                              std::string_view gross_amount,
                                              std::string_view server_key);

// True when `received` equals the expected signature. The comparison of contents is
// constant-time (CRYPTO_memcmp); only the length, which is public, short-circuits.
[[nodiscard]] bool verify_signature(std::string_view received, std::string_view order_id,
                                    std::string_view status_code, std::string_view gross_amount,
                                    std::string_view server_key);

// Constant-time equality for secrets (tokens, keys). Lengths are compared first; a length
// mismatch returns false without looking at the contents.
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace posrelay::midtrans
