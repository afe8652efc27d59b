// QR code images: libqrencode for the symbol, libpng to write it as a PNG in memory.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace posrelay::sim {

// A 1-bit grayscale PNG of the QR code of `text` (error correction M, 4 px per module,
// a 4-module quiet zone). nullopt when libqrencode or libpng fail (too long a text).
[[nodiscard]] std::optional<std::string> qr_png(std::string_view text);

}  // namespace posrelay::sim
