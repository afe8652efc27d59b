#!/usr/bin/env bash
# Checks the monitoring kit with promtool (Debian package prometheus).
# usage: tests/prometheus/promtool.sh check|test|dashboard [SOURCE_DIR]
#   check      promtool check rules deploy/prometheus/posrelay.rules.yml
#   test       promtool test rules tests/prometheus/posrelay.rules.test.yml (every alert)
#   dashboard  deploy/grafana/posrelay.json is JSON, and every query in it (panels and
#              template variables, with the Grafana variables filled in) is PromQL that
#              promtool accepts (written as recording rules to a temporary file)
# PROMTOOL (default: promtool on PATH) and PYTHON (default: python3) name the tools.
set -euo pipefail

mode=${1:?usage: promtool.sh check|test|dashboard [SOURCE_DIR]}
src=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
promtool=${PROMTOOL:-promtool}
python=${PYTHON:-python3}
rules="$src/deploy/prometheus/posrelay.rules.yml"
tests="$src/tests/prometheus/posrelay.rules.test.yml"
dashboard="$src/deploy/grafana/posrelay.json"

case "$mode" in
  check) exec "$promtool" check rules "$rules" ;;
  # promtool resolves rule_files relative to the test file.
  test) exec "$promtool" test rules "$tests" ;;
  dashboard) ;;
  *) echo "promtool.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" - "$dashboard" "$tmp/dashboard.rules.yml" <<'EOF'
import json, re, sys

with open(sys.argv[1]) as f:
    dash = json.load(f)  # raises (exit 1) when it is not JSON

def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))

def fill(expr):
    # Grafana's variables, as a query would see them.
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\{?[A-Za-z_]+\}?", ".*", expr)

exprs = []
for p in panels(dash.get("panels", [])):
    for t in p.get("targets", []):
        exprs.append((p.get("title", "?"), t["expr"]))
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    if v.get("type") == "query" and isinstance(q, dict):
        m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_]+\)", q["query"])
        if not m:
            sys.exit(f"variable {v['name']}: not label_values(SELECTOR, LABEL): {q['query']}")
        exprs.append(("variable " + v["name"], m.group(1)))
if not exprs:
    sys.exit("no queries in the dashboard")
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        out.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(fill(e))}\n")
print(f"dashboard: {len(exprs)} queries")
EOF
"$promtool" check rules "$tmp/dashboard.rules.yml"
