// The POS page's static files: read once, found by path under the prefix, nothing else.
#include "posrelay/http/static_files.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {
namespace fs = std::filesystem;
using posrelay::http::content_type_for;
using posrelay::http::static_files;

TEST(StaticFiles, ContentTypes) {
    struct row {
        const char* name;
        const char* type;
    } rows[] = {{"index.html", "text/html; charset=utf-8"},
                {"a/b.js", "text/javascript; charset=utf-8"},
                {"x.png", "image/png"},
                {"noext", "application/octet-stream"}};
    for (const auto& r : rows)
        EXPECT_EQ(content_type_for(r.name), r.type) << r.name;
}

class StaticFilesDir : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) / ("posrelay-static-" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "lib");
        fs::create_directories(dir_ / ".git");
        write("index.html", "<p>till</p>");
        write("lib/client.js", "export {}");
        write(".secret", "no");
        write(".git/config", "no");
        write("bad name.js", "no");
        fs::create_directories(dir_.string() + "-lib");
        std::ofstream(dir_.string() + "-lib/core.js") << "linked";
        fs::create_directory_symlink(dir_.string() + "-lib", dir_ / "terminal");
    }
    void TearDown() override {
        fs::remove_all(dir_);
        fs::remove_all(dir_.string() + "-lib");
    }
    void write(const char* rel, const char* text) { std::ofstream(dir_ / rel) << text; }
    fs::path dir_;
};

TEST_F(StaticFilesDir, FindsFilesUnderThePrefixOnly) {
    const static_files files(dir_, "/pos/");
    EXPECT_EQ(files.size(), 3u);
    struct row {
        const char* path;
        const char* body;  // nullptr: not found
    } rows[] = {
        {"/pos/", "<p>till</p>"},
        {"/pos/?terminal=T-1", "<p>till</p>"},
        {"/pos/index.html", "<p>till</p>"},
        {"/pos/lib/client.js", "export {}"},
        {"/pos/terminal/core.js", "linked"},  // through a directory symlink (clients/pos)
        {"/pos/lib/", nullptr},
        {"/pos/.secret", nullptr},
        {"/pos/.git/config", nullptr},
        {"/pos/bad name.js", nullptr},
        {"/pos/../etc/passwd", nullptr},
        {"/pos/lib/../index.html", nullptr},
        {"/other/index.html", nullptr},
    };
    for (const auto& r : rows) {
        const auto* f = files.find(r.path);
        if (!r.body) {
            EXPECT_EQ(f, nullptr) << r.path;
        } else {
            ASSERT_NE(f, nullptr) << r.path;
            EXPECT_EQ(f->body, r.body) << r.path;
        }
    }
}

TEST_F(StaticFilesDir, NotADirectoryIsRefused) {
    EXPECT_THROW(static_files(dir_ / "index.html", "/pos/"), std::runtime_error);
}

}  // namespace
