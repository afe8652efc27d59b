// Readers for the monitoring kit's test (monitoring_kit_test.cpp): the metric selectors of a
// PromQL expression, the Prometheus text format, the rules file, the Grafana dashboard's
// queries and the runbook's anchors. Pure functions over text.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace posrelay::test::kit {

// One label matcher of a selector: name op "value", op one of = != =~ !~.
struct matcher {
    std::string name;
    std::string op;
    std::string value;
    bool operator==(const matcher&) const = default;
};

// A vector selector: a metric name and its matchers (`up{job="x"}`, `rate(x[5m])`'s x).
struct selector {
    std::string metric;
    std::vector<matcher> matchers;
    bool operator==(const selector&) const = default;
};

// Every vector selector of a PromQL expression, in order. Function and aggregation names
// (an identifier before `(`), keywords (by, without, on, ignoring, group_left, group_right,
// bool, and, or, unless, offset, inf, nan), the label lists after by/without/on/ignoring/
// group_left/group_right, strings, numbers, durations and range or subquery brackets are
// not metrics. `{__name__="x"}` is x. Throws std::invalid_argument on an unterminated string
// or bracket, or a malformed matcher.
[[nodiscard]] std::vector<selector> promql_selectors(std::string_view expr);

// The distinct metric names of promql_selectors(expr).
[[nodiscard]] std::set<std::string> promql_metric_names(std::string_view expr);

// A scrape in the Prometheus text format: the type of each family (# TYPE lines), and for
// each sample name (`x_bucket` as written) the values seen for each of its label names.
struct scrape {
    std::map<std::string, std::string, std::less<>> types;
    std::map<std::string, std::map<std::string, std::set<std::string>>, std::less<>> samples;
};
[[nodiscard]] scrape parse_scrape(std::string_view text);

// The family a sample name belongs to: itself when it is one, the name less _bucket (of a
// histogram), _sum or _count (of a histogram or summary), else "" (x_count of a gauge x is
// not x's).
[[nodiscard]] std::string family_of(std::string_view sample, const scrape& s);

// What a scrape lacks that `used` selectors name, one line each: a metric with no sample
// of that name, a label name its samples do not have, an `=` (or `=~` a|b|c) value no sample
// has. Allowed: `up` (Prometheus makes it), the target labels job and instance, values with a
// Grafana variable ($...), and any value of posrelay_http_requests_total,
// posrelay_terminal_requests_total and posrelay_terminal_disconnects_total (their series are
// made on first use).
[[nodiscard]] std::vector<std::string> scrape_problems(const std::vector<selector>& used,
                                                       const scrape& s);

// A rule of a Prometheus rules file: `alert` or `record`, its name, its expression (block
// scalars joined with newlines) and the other `key: value` lines under it (labels and
// annotations, quotes removed), e.g. fields["runbook_url"].
struct rule {
    std::string kind;
    std::string name;
    std::string expr;
    std::map<std::string, std::string> fields;
};
// Reads the rules file layout deploy/prometheus/posrelay.rules.yml uses (one rule per
// `- alert:`/`- record:` item, `expr:` plain, quoted or a `|` block). Not a YAML parser.
[[nodiscard]] std::vector<rule> parse_rules(std::string_view yaml);

// Every query of a Grafana dashboard (JSON): the `expr` of each panel's targets (rows'
// nested panels too) and the selector of each `label_values(SELECTOR, LABEL)` variable.
// Throws std::runtime_error when it is not JSON or a target has no string expr.
[[nodiscard]] std::vector<std::string> dashboard_queries(std::string_view json);

// The anchor GitHub gives a Markdown heading: lower case, spaces to '-', only letters,
// digits, '-' and '_' kept.
[[nodiscard]] std::string heading_anchor(std::string_view heading);
// The anchors of every heading (# to ######) of a Markdown text.
[[nodiscard]] std::set<std::string> markdown_anchors(std::string_view markdown);

// The first `limit` bytes of a file at most; throws when it cannot be read or is larger.
[[nodiscard]] std::string read_text_file(const std::string& path, std::size_t limit = 1 << 22);

}  // namespace posrelay::test::kit
