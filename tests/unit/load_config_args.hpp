// Unit-test helper: posrelay::load_config on an argument list (without the program name) and
// an environment of "NAME=value" strings, as main() would pass them.
#pragma once

#include <string>
#include <vector>

#include "posrelay/config.hpp"

namespace posrelay::test_support {

inline cli_result load_config_args(std::vector<std::string> args,
                                   const std::vector<std::string>& env) {
    args.insert(args.begin(), "posrelay");
    std::vector<const char*> argv;
    for (const auto& a : args)
        argv.push_back(a.c_str());
    argv.push_back(nullptr);
    std::vector<const char*> envp;
    for (const auto& e : env)
        envp.push_back(e.c_str());
    envp.push_back(nullptr);
    return load_config(static_cast<int>(args.size()), argv.data(), envp.data());
}

}  // namespace posrelay::test_support
