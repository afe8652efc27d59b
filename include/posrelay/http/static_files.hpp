// Static files served under a path prefix (the browser POS page, GET /pos/): a directory read
// once at start (bounded), so serving never touches the disk and no request path can reach
// outside what was read.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "posrelay/http/router.hpp"

namespace posrelay::http {

// The Content-Type of a file by its extension (application/octet-stream when unknown).
[[nodiscard]] std::string_view content_type_for(std::string_view name) noexcept;

class static_files {
public:
    static constexpr std::size_t max_files = 256;
    static constexpr std::size_t max_total_bytes = 4 << 20;

    // Reads the regular files under `dir` (symbolic links followed; names of A-Z a-z 0-9 . _ -
    // only, none starting with '.'). Throws std::runtime_error when `dir` is not a directory
    // or holds more than the limits.
    static_files(const std::filesystem::path& dir, std::string prefix);

    struct file {
        std::string_view content_type;
        std::string body;
    };
    // The file a request path names: prefix + relative path; the prefix itself (or any path
    // ending in '/') names its index.html. nullptr when there is none.
    [[nodiscard]] const file* find(std::string_view path) const;
    [[nodiscard]] std::size_t size() const noexcept { return files_.size(); }

    // GET handler: the file (200), a redirect from the prefix without its '/', or 404.
    [[nodiscard]] handler_fn handler() const;

private:
    std::map<std::string, file, std::less<>> files_;  // relative path → file
    std::string prefix_;                              // "/pos/"
};

}  // namespace posrelay::http
