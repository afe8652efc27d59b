// Tests of `posrelay --print-example-config`: the environment file shipped as
// /etc/posrelay/posrelay.conf names every option of --help, and its values load.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "load_config_args.hpp"
#include "posrelay/config.hpp"

namespace {

posrelay::cli_result load(std::vector<std::string> args, const std::vector<std::string>& env) {
    return posrelay::test_support::load_config_args(std::move(args), env);
}

// The option names of --help ("  --NAME VALUE" lines), without the command-line-only flags.
std::vector<std::string> help_options() {
    std::vector<std::string> names;
    std::istringstream in(load({"--help"}, {}).help_text);
    for (std::string line; std::getline(in, line);) {
        if (!line.starts_with("  --")) continue;
        auto name = line.substr(4, line.find(' ', 4) - 4);
        if (name != "help" && name != "version" && name != "print-example-config")
            names.push_back(name);
    }
    return names;
}

std::string env_name(const std::string& option) {
    std::string out = "POSRELAY_";
    for (char c : option)
        out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

TEST(ExampleConfig, NamesEveryOptionOfTheHelpCommentedOut) {
    const auto cli = load({"--print-example-config"}, {});
    ASSERT_EQ(cli.action, posrelay::cli_action::example_config);
    const auto names = help_options();
    ASSERT_GT(names.size(), 40u);  // the parse of --help found the table
    for (const auto& name : names) {
        EXPECT_NE(cli.help_text.find("\n#" + env_name(name) + "="), std::string::npos) << name;
        EXPECT_NE(cli.help_text.find("\n# --" + name + " "), std::string::npos) << name;
    }
}

TEST(ExampleConfig, EveryLineIsACommentAndTheDefaultsLoadAsEnvironment) {
    const auto text = load({"--print-example-config"}, {}).help_text;
    std::vector<std::string> env;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        ASSERT_TRUE(line.empty() || line.starts_with('#')) << line;
        if (line.starts_with("#POSRELAY_")) env.push_back(line.substr(1));
    }
    // Uncommented, the file is the defaults: it loads without an unknown variable.
    const auto cli = load({}, env);
    EXPECT_TRUE(cli.cfg.unknown_env.empty());
    const auto defaults = load({}, {});
    EXPECT_EQ(cli.cfg.listen.port, defaults.cfg.listen.port);
    EXPECT_EQ(cli.cfg.shutdown_timeout, defaults.cfg.shutdown_timeout);
}

}  // namespace
