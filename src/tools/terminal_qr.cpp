// qr_text: libqrencode's module matrix → lines of "█", "▀", "▄" and spaces.
#include "tools/terminal_qr.hpp"

#include <qrencode.h>

#include <memory>

namespace posrelay::tools {

std::string qr_text(std::string_view data) {
    if (data.empty()) return {};
    const std::string text(data);  // libqrencode wants a NUL-terminated string
    std::unique_ptr<QRcode, decltype(&QRcode_free)> qr(
        QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_L, QR_MODE_8, 1), &QRcode_free);
    if (!qr) return {};
    constexpr int margin = 2;
    const int width = qr->width;
    const int size = width + 2 * margin;
    // Light (outside the symbol, or a module whose lowest bit is clear) at (x, y).
    auto light = [&](int x, int y) {
        x -= margin;
        y -= margin;
        if (x < 0 || y < 0 || x >= width || y >= width) return true;
        return (qr->data[y * width + x] & 1) == 0;
    };
    std::string out;
    for (int y = 0; y < size; y += 2) {
        for (int x = 0; x < size; ++x) {
            const bool top = light(x, y);
            const bool bottom = y + 1 < size ? light(x, y + 1) : false;
            out += top ? (bottom ? "\u2588" : "\u2580") : (bottom ? "\u2584" : " ");
        }
        out += '\n';
    }
    return out;
}

}  // namespace posrelay::tools
