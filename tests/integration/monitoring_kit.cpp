// Readers for the monitoring kit's test: PromQL selectors, the Prometheus text format, the
// rules file, the dashboard's queries, Markdown anchors (monitoring_kit.hpp).
#include "monitoring_kit.hpp"

#include <simdjson.h>

#include <cctype>
#include <fstream>
#include <stdexcept>

namespace posrelay::test::kit {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool is_quote(char c) {
    return c == '"' || c == '\'' || c == '`';
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

// A cursor over an expression (or a sample line).
struct lexer {
    std::string_view s;
    std::size_t i = 0;

    [[nodiscard]] bool done() const { return i >= s.size(); }
    [[nodiscard]] char peek(std::size_t ahead = 0) const {
        return i + ahead < s.size() ? s[i + ahead] : '\0';
    }
    void skip_space() {
        while (!done() && is_space(s[i]))
            ++i;
    }
    std::string ident() {
        const auto b = i;
        while (!done() && ident_char(s[i]))
            ++i;
        return std::string(s.substr(b, i - b));
    }
    [[noreturn]] void fail(std::string_view what) const {
        throw std::invalid_argument(std::string(what) + " at " + std::to_string(i) +
                                    " in: " + std::string(s));
    }
    // At a quote: the string's value (a backslash keeps the character after it, except in
    // backquoted strings).
    std::string string_literal() {
        const char q = s[i++];
        std::string out;
        while (!done() && s[i] != q) {
            if (s[i] == '\\' && q != '`' && i + 1 < s.size()) ++i;
            out += s[i++];
        }
        if (done()) fail("unterminated string");
        ++i;
        return out;
    }
    // At `open`: past its matching `close` (strings inside skipped).
    void skip_balanced(char open, char close) {
        int depth = 0;
        while (!done()) {
            const char c = s[i];
            if (is_quote(c)) {
                (void)string_literal();
                continue;
            }
            ++i;
            if (c == open) ++depth;
            if (c == close && --depth == 0) return;
        }
        fail(std::string("unbalanced ") + open);
    }
};

// At '{': the matchers up to the matching '}'.
std::vector<matcher> read_matchers(lexer& in) {
    ++in.i;
    std::vector<matcher> out;
    for (;;) {
        in.skip_space();
        if (in.peek() == '}') {
            ++in.i;
            return out;
        }
        if (!ident_start(in.peek())) in.fail("label name expected");
        matcher m;
        m.name = in.ident();
        in.skip_space();
        const std::string_view two = in.s.substr(in.i, 2);
        m.op = two == "!=" || two == "=~" || two == "!~" ? std::string(two)
               : in.peek() == '='                        ? "="
                                                         : "";
        if (m.op.empty()) in.fail("matcher operator expected");
        in.i += m.op.size();
        in.skip_space();
        if (!is_quote(in.peek())) in.fail("label value expected");
        m.value = in.string_literal();
        out.push_back(std::move(m));
        in.skip_space();
        if (in.peek() == ',') {
            ++in.i;
        } else if (in.peek() != '}') {
            in.fail("',' or '}' expected");
        }
    }
}

// An identifier in an expression: a keyword, a function or aggregation, or a selector.
void read_word(lexer& in, std::vector<selector>& out) {
    const std::string word = in.ident();
    const std::string key = lower(word);
    if (key == "by" || key == "without" || key == "on" || key == "ignoring" ||
        key == "group_left" || key == "group_right") {
        in.skip_space();
        if (in.peek() == '(') in.skip_balanced('(', ')');  // label names
        return;
    }
    if (key == "bool" || key == "and" || key == "or" || key == "unless" || key == "offset" ||
        key == "inf" || key == "nan" || key == "atan2")
        return;
    in.skip_space();
    if (in.peek() == '(') return;  // a function or an aggregation
    lexer ahead = in;
    if (const auto next = lower(ahead.ident()); next == "by" || next == "without")
        return;  // an aggregation with its modifier first: sum by (job) (...)
    selector sel{word, {}};
    if (in.peek() == '{') sel.matchers = read_matchers(in);
    out.push_back(std::move(sel));
}

// `{__name__="x", ...}`: a selector of x (nothing without a __name__= matcher).
void read_bare_matchers(lexer& in, std::vector<selector>& out) {
    auto ms = read_matchers(in);
    for (auto it = ms.begin(); it != ms.end(); ++it) {
        if (it->name == "__name__" && it->op == "=") {
            std::string metric = it->value;
            ms.erase(it);
            out.push_back({std::move(metric), std::move(ms)});
            return;
        }
    }
}

}  // namespace

std::vector<selector> promql_selectors(std::string_view expr) {
    lexer in{expr};
    std::vector<selector> out;
    while (!in.done()) {
        const char c = in.peek();
        if (is_quote(c)) {
            (void)in.string_literal();
        } else if (c == '#') {  // a comment, to the end of the line
            while (!in.done() && in.peek() != '\n')
                ++in.i;
        } else if (c == '[') {  // a range, or a subquery's range and step
            in.skip_balanced('[', ']');
        } else if (c == '{') {
            read_bare_matchers(in, out);
        } else if (c == '$') {  // a Grafana variable: $name, ${name}
            ++in.i;
            if (in.peek() == '{') in.skip_balanced('{', '}');
            (void)in.ident();
        } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                   (c == '.' && std::isdigit(static_cast<unsigned char>(in.peek(1))))) {
            while (!in.done() && (ident_char(in.peek()) || in.peek() == '.'))
                ++in.i;  // a number or a duration
        } else if (ident_start(c)) {
            read_word(in, out);
        } else {
            ++in.i;
        }
    }
    return out;
}

std::set<std::string> promql_metric_names(std::string_view expr) {
    std::set<std::string> out;
    for (auto& s : promql_selectors(expr))
        out.insert(std::move(s.metric));
    return out;
}

scrape parse_scrape(std::string_view text) {
    scrape out;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view line = trim(text.substr(0, nl));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.starts_with("# TYPE ")) {
            const std::string_view rest = line.substr(7);
            const auto sp = rest.find(' ');
            if (sp != std::string_view::npos)
                out.types[std::string(rest.substr(0, sp))] = std::string(trim(rest.substr(sp)));
            continue;
        }
        if (line.empty() || line.front() == '#') continue;
        const auto end = line.find_first_of("{ ");
        auto& labels = out.samples[std::string(line.substr(0, end))];
        if (end == std::string_view::npos || line[end] != '{') continue;
        lexer in{line, end};
        for (auto& m : read_matchers(in))
            labels[m.name].insert(std::move(m.value));
    }
    return out;
}

std::string family_of(std::string_view sample, const scrape& s) {
    if (s.types.contains(sample)) return std::string(sample);
    struct suffix {
        std::string_view text;
        bool of_summary;
    };
    for (const suffix x :
         {suffix{"_bucket", false}, suffix{"_sum", true}, suffix{"_count", true}}) {
        if (!sample.ends_with(x.text)) continue;
        const auto base = sample.substr(0, sample.size() - x.text.size());
        const auto t = s.types.find(base);
        if (t == s.types.end()) continue;
        if (t->second == "histogram" || (x.of_summary && t->second == "summary"))
            return std::string(base);
    }
    return {};
}

namespace {

// The values of an `=` matcher, or of an `=~` one that is a plain alternation (a|b|c); none
// for anything else (a regex, a negation, a Grafana variable).
std::vector<std::string> literal_values(const matcher& m) {
    if (m.value.find('$') != std::string::npos) return {};
    if (m.op == "=") return {m.value};
    if (m.op != "=~") return {};
    std::vector<std::string> out(1);
    for (char c : m.value) {
        if (c == '|') {
            out.emplace_back();
        } else if (ident_char(c) || c == '+' || c == '.' || c == '-') {
            out.back() += c;
        } else {
            return {};
        }
    }
    return out;
}

bool labels_made_on_first_use(std::string_view metric) {
    return metric == "posrelay_http_requests_total" ||
           metric == "posrelay_terminal_requests_total" ||
           metric == "posrelay_terminal_disconnects_total";
}

}  // namespace

std::vector<std::string> scrape_problems(const std::vector<selector>& used, const scrape& s) {
    std::vector<std::string> out;
    for (const auto& sel : used) {
        if (sel.metric == "up") continue;
        const auto it = s.samples.find(sel.metric);
        if (it == s.samples.end()) {
            out.push_back(sel.metric + ": not in the scrape");
            continue;
        }
        for (const auto& m : sel.matchers) {
            if (m.name == "job" || m.name == "instance") continue;
            const auto label = it->second.find(m.name);
            if (label == it->second.end()) {
                out.push_back(sel.metric + ": no label " + m.name);
                continue;
            }
            if (labels_made_on_first_use(sel.metric)) continue;
            for (const auto& v : literal_values(m)) {
                if (!label->second.contains(v))
                    out.push_back(sel.metric + ": no " + m.name + "=\"" + v + "\"");
            }
        }
    }
    return out;
}

namespace {

// A YAML scalar without its quotes ('' in single quotes is ', \" in double quotes is ").
std::string unquote(std::string_view v) {
    v = trim(v);
    if (v.size() < 2 || (v.front() != '\'' && v.front() != '"') || v.back() != v.front())
        return std::string(v);
    const char q = v.front();
    v = v.substr(1, v.size() - 2);
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (q == '\'' && v[i] == '\'' && i + 1 < v.size() && v[i + 1] == '\'') ++i;
        if (q == '"' && v[i] == '\\' && i + 1 < v.size()) ++i;
        out += v[i];
    }
    return out;
}

}  // namespace

std::vector<rule> parse_rules(std::string_view yaml) {
    std::vector<rule> out;
    rule* cur = nullptr;
    std::size_t block_indent = std::string_view::npos;  // of `expr: |`, while in its block
    while (!yaml.empty()) {
        const auto nl = yaml.find('\n');
        const std::string_view raw = yaml.substr(0, nl);
        yaml.remove_prefix(nl == std::string_view::npos ? yaml.size() : nl + 1);
        const std::string_view t = trim(raw);
        const std::size_t indent = raw.find_first_not_of(' ');
        if (block_indent != std::string_view::npos) {
            if (t.empty()) continue;
            if (indent > block_indent) {
                cur->expr += (cur->expr.empty() ? "" : "\n") + std::string(t);
                continue;
            }
            block_indent = std::string_view::npos;
        }
        if (t.empty() || t.front() == '#') continue;
        if (t.starts_with("- alert:") || t.starts_with("- record:")) {
            const auto colon = t.find(':');
            out.push_back(
                {std::string(t.substr(2, colon - 2)), unquote(t.substr(colon + 1)), {}, {}});
            cur = &out.back();
            continue;
        }
        if (t.starts_with("- ")) cur = nullptr;  // another list's item (a group)
        const auto colon = t.find(':');
        if (cur == nullptr || colon == std::string_view::npos) continue;
        const std::string key(trim(t.substr(0, colon)));
        const std::string_view value = trim(t.substr(colon + 1));
        if (key == "expr" && (value == "|" || value == "|-" || value == ">" || value == ">-")) {
            block_indent = indent;
        } else if (key == "expr") {
            cur->expr = unquote(value);
        } else if (!value.empty()) {
            cur->fields[key] = unquote(value);
        }
    }
    return out;
}

namespace {

using simdjson::dom::element;

void collect_panel_queries(element panels, std::vector<std::string>& out) {
    simdjson::dom::array list;
    if (panels.get_array().get(list)) return;
    for (element p : list) {
        simdjson::dom::array targets;
        if (!p["targets"].get_array().get(targets)) {
            for (element t : targets) {
                std::string_view expr;
                if (t["expr"].get_string().get(expr))
                    throw std::runtime_error("dashboard: a target without a string expr");
                out.emplace_back(expr);
            }
        }
        element nested;
        if (!p["panels"].get(nested)) collect_panel_queries(nested, out);
    }
}

// The selector of a `label_values(SELECTOR, LABEL)` variable query ("" for label_values(LABEL)).
std::string label_values_selector(std::string_view q) {
    q = trim(q);
    if (!q.starts_with("label_values(") || !q.ends_with(")"))
        throw std::runtime_error("dashboard: a variable query other than label_values: " +
                                 std::string(q));
    q = q.substr(13, q.size() - 14);
    const auto comma = q.rfind(',');
    return comma == std::string_view::npos ? std::string() : std::string(trim(q.substr(0, comma)));
}

}  // namespace

std::vector<std::string> dashboard_queries(std::string_view json) {
    simdjson::dom::parser parser;
    const simdjson::padded_string padded(json);
    element root;
    if (auto err = parser.parse(padded).get(root))
        throw std::runtime_error(std::string("dashboard: not JSON: ") +
                                 simdjson::error_message(err));
    std::vector<std::string> out;
    element panels;
    if (!root["panels"].get(panels)) collect_panel_queries(panels, out);
    simdjson::dom::array vars;
    if (root["templating"]["list"].get_array().get(vars)) return out;
    for (element v : vars) {
        std::string_view type;
        if (v["type"].get_string().get(type) || type != "query") continue;
        std::string_view q;
        if (v["query"]["query"].get_string().get(q) && v["query"].get_string().get(q))
            throw std::runtime_error("dashboard: a query variable without a query");
        if (auto sel = label_values_selector(q); !sel.empty()) out.push_back(std::move(sel));
    }
    return out;
}

std::string heading_anchor(std::string_view heading) {
    std::string out;
    for (char c : trim(heading)) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else if (c == ' ') {
            out += '-';
        } else if (c == '-' || c == '_') {
            out += c;
        }
    }
    return out;
}

std::set<std::string> markdown_anchors(std::string_view markdown) {
    std::set<std::string> out;
    bool fenced = false;
    while (!markdown.empty()) {
        const auto nl = markdown.find('\n');
        const std::string_view line = markdown.substr(0, nl);
        markdown.remove_prefix(nl == std::string_view::npos ? markdown.size() : nl + 1);
        if (trim(line).starts_with("```")) fenced = !fenced;
        if (fenced || !line.starts_with('#')) continue;
        const auto hashes = line.find_first_not_of('#');
        if (hashes == std::string_view::npos || hashes > 6 || line[hashes] != ' ') continue;
        out.insert(heading_anchor(line.substr(hashes)));
    }
    return out;
}

std::string read_text_file(const std::string& path, std::size_t limit) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    std::string out(limit + 1, '\0');
    f.read(out.data(), static_cast<std::streamsize>(out.size()));
    out.resize(static_cast<std::size_t>(f.gcount()));
    if (out.size() > limit) throw std::runtime_error(path + " is larger than the limit");
    return out;
}

}  // namespace posrelay::test::kit
