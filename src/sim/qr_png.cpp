// Renders a QR code (libqrencode) into an in-memory PNG (libpng).
#include "qr_png.hpp"

#include <png.h>
#include <qrencode.h>

#include <memory>
#include <vector>

namespace posrelay::sim {

namespace {

constexpr int pixels_per_module = 4;
constexpr int quiet_modules = 4;

void append_png_bytes(png_structp png, png_bytep data, png_size_t size) {
    auto* out = static_cast<std::string*>(png_get_io_ptr(png));
    out->append(reinterpret_cast<const char*>(data), size);
}

void no_flush(png_structp) {}

}  // namespace

std::optional<std::string> qr_png(std::string_view text) {
    const std::string z(text);
    std::unique_ptr<QRcode, decltype(&QRcode_free)> code(
        QRcode_encodeString8bit(z.c_str(), 0, QR_ECLEVEL_M), &QRcode_free);
    if (!code) return std::nullopt;
    const int modules = code->width + 2 * quiet_modules;
    const auto side = static_cast<png_uint_32>(modules * pixels_per_module);

    std::string out;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    if (!png) return std::nullopt;
    png_infop info = png_create_info_struct(png);
    // Every row is built before libpng is called, so nothing needs cleanup on its longjmp.
    std::vector<std::vector<png_byte>> rows(side, std::vector<png_byte>((side + 7) / 8, 0));
    for (png_uint_32 y = 0; y < side; ++y) {
        const int my = static_cast<int>(y) / pixels_per_module - quiet_modules;
        for (png_uint_32 x = 0; x < side; ++x) {
            const int mx = static_cast<int>(x) / pixels_per_module - quiet_modules;
            const bool inside = mx >= 0 && my >= 0 && mx < code->width && my < code->width;
            const bool dark = inside && (code->data[my * code->width + mx] & 1);
            // 1-bit grayscale: a set bit is white.
            if (!dark) rows[y][x / 8] |= static_cast<png_byte>(0x80 >> (x % 8));
        }
    }
    std::vector<png_bytep> row_ptrs;
    for (auto& r : rows)
        row_ptrs.push_back(r.data());
    volatile bool ok = false;  // set after setjmp: volatile keeps it across longjmp
    if (info && setjmp(png_jmpbuf(png)) == 0) {
        png_set_write_fn(png, &out, append_png_bytes, no_flush);
        png_set_IHDR(png, info, side, side, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        png_write_image(png, row_ptrs.data());
        png_write_end(png, nullptr);
        ok = true;
    }
    png_destroy_write_struct(&png, info ? &info : nullptr);
    if (!ok) return std::nullopt;
    return out;
}

}  // namespace posrelay::sim
