// Build identity: the version is a compile definition (POSRELAY_VERSION); the git commit comes
// from a generated source file, so that a new commit does not recompile everything.
#pragma once

#include <string_view>

namespace posrelay {
[[nodiscard]] std::string_view git_commit() noexcept;
}  // namespace posrelay
