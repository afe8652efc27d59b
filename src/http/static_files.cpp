#include "posrelay/http/static_files.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace posrelay::http {
namespace fs = std::filesystem;

std::string_view content_type_for(std::string_view name) noexcept {
    static constexpr std::pair<std::string_view, std::string_view> types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".png", "image/png"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".ts", "text/plain; charset=utf-8"},
    };
    for (const auto& [ext, type] : types) {
        if (name.ends_with(ext)) return type;
    }
    return "application/octet-stream";
}

namespace {
bool safe_name(std::string_view n) {
    if (n.empty() || n.front() == '.') return false;
    for (const char c : n) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool safe_relative(const fs::path& rel) {
    for (const auto& part : rel) {
        if (!safe_name(part.string())) return false;
    }
    return true;
}
}  // namespace

static_files::static_files(const fs::path& dir, std::string prefix) : prefix_(std::move(prefix)) {
    if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + " is not a directory");
    std::size_t total = 0;
    const auto opts = fs::directory_options::follow_directory_symlink;
    for (auto it = fs::recursive_directory_iterator(dir, opts); it != fs::end(it); ++it) {
        const fs::path rel = it->path().lexically_relative(dir);  // not through symlinks
        if (!safe_relative(rel)) {
            if (it->is_directory()) it.disable_recursion_pending();
            continue;
        }
        if (!it->is_regular_file()) continue;
        if (files_.size() == max_files || (total += it->file_size()) > max_total_bytes) {
            throw std::runtime_error(dir.string() + " holds more than " +
                                     std::to_string(max_files) + " files or " +
                                     std::to_string(max_total_bytes) + " bytes");
        }
        std::ifstream in(it->path(), std::ios::binary);
        std::ostringstream body;
        body << in.rdbuf();
        const std::string name = rel.generic_string();
        files_[name] = file{content_type_for(name), std::move(body).str()};
    }
}

const static_files::file* static_files::find(std::string_view path) const {
    path = path.substr(0, path.find_first_of("?#"));
    if (!path.starts_with(prefix_)) return nullptr;
    std::string rel(path.substr(prefix_.size()));
    if (rel.empty() || rel.back() == '/') rel += "index.html";
    const auto it = files_.find(rel);
    return it == files_.end() ? nullptr : &it->second;
}

handler_fn static_files::handler() const {
    return [this](request& req, const request_context&) -> boost::asio::awaitable<response> {
        const std::string_view target(req.target().data(), req.target().size());
        const std::string_view bare = std::string_view(prefix_).substr(0, prefix_.size() - 1);
        if (target.substr(0, target.find('?')) == bare) {
            response res{beast_http::status::moved_permanently, 11};
            res.set(beast_http::field::location, prefix_);
            co_return res;
        }
        const file* f = find(target);
        if (!f) co_return json_error(404, "not_found", "no such file");
        response res{beast_http::status::ok, 11};
        res.set(beast_http::field::content_type, f->content_type);
        res.set(beast_http::field::cache_control, "no-cache");
        res.set("X-Content-Type-Options", "nosniff");
        res.set("Content-Security-Policy",
                "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:; "
                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
        res.body() = f->body;
        co_return res;
    };
}

}  // namespace posrelay::http
