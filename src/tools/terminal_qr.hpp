// A QR code drawn with Unicode half blocks, for showing a charge's qr_string in a terminal
// (libqrencode does the encoding). Pure code, no I/O.
#pragma once

#include <string>
#include <string_view>

namespace posrelay::tools {

// `data` as a QR code (error correction level L, 8-bit mode), two module rows per text
// line, with a 2-module quiet zone: light modules are drawn as blocks so that it scans on
// a dark-background terminal (like `qrencode -t UTF8`). Each line ends with '\n'.
// "" when `data` is empty or cannot be encoded (too long for a QR code).
[[nodiscard]] std::string qr_text(std::string_view data);

}  // namespace posrelay::tools
