#!/usr/bin/env python3
"""Checks the Grafana dashboard and the alert rules against the metrics the layer records.

    python3 dashboards/check.py [PROMTOOL]

- token-rotation.json is valid JSON with the fields Grafana needs to import it (title, uid,
  schemaVersion, templating, panels with unique ids, a grid position, a Prometheus data
  source and queries);
- every metric a query or rule names is one the Metrics table of docs/guides/operating.md
  lists (that table is held equal to `token_tower::metrics::METRICS` by
  tests/metrics_endpoint.rs), a histogram
  only through its `_bucket`, `_count` or `_sum` series, and every label value a selector
  matches exactly is one the table lists for that metric;
- the dashboard shows what it is for (rotations by outcome, reuse, unknown tokens,
  rejections by reason, store latency p50 and p99 from the buckets, store errors by kind)
  and uses every metric; the rules cover reuse, store errors and 503s, store latency p99
  and unknown tokens;
- with PROMTOOL, every dashboard query parses as PromQL: they are written, Grafana's
  variables replaced, into a rules file that `promtool check rules` loads.

Standard library only, so a fresh machine needs nothing more than python3.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DASHBOARD = os.path.join(HERE, "token-rotation.json")
RULES = os.path.join(HERE, "alerts.yml")

# Labels Prometheus adds at scrape time, and a histogram's bucket bound.
SCRAPE_LABELS = {"job", "instance", "le"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

errors = []


def fail(message):
    errors.append(message)


def documented_metrics():
    """{name: (kind, {label: set(values)})} from the operating guide's Metrics table."""
    with open(os.path.join(ROOT, "docs", "guides", "operating.md"), encoding="utf-8") as f:
        guide = f.read()
    section = guide[guide.index("\n## Metrics\n"):]
    lines = iter(section.splitlines())
    for line in lines:
        if line.startswith("| metric | kind | labels |"):
            next(lines)  # the |---| line
            break
    else:
        sys.exit("check.py: no metrics table in the operating guide's Metrics section")
    metrics = {}
    for line in lines:
        if not line.startswith("|"):
            break
        name, kind, labels = (c.strip() for c in line.strip("|").split(" | "))
        parsed = {}
        if labels != "–":
            for label in labels.split("; "):
                label_name, values = label.split(": ")
                parsed[label_name.strip("`")] = {v.strip("`") for v in values.split(", ")}
        metrics[name.strip("`")] = (kind, parsed)
    if not metrics:
        sys.exit("check.py: the operating guide's metrics table is empty")
    return metrics


def check_references(where, text, metrics):
    """Every token_rotation_* name in `text` is documented; exact label matches are too."""
    for match in re.finditer(r"\btoken_rotation_[a-z_]+", text):
        series = match.group(0)
        base = resolve(series, metrics)
        if base is None:
            fail(f"{where}: {series} is not a metric of the operating guide's Metrics table")
            continue
        selector = re.match(r"\{([^}]*)\}", text[match.end():])
        if not selector:
            continue
        _, labels = metrics[base]
        for matcher in re.finditer(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', selector.group(1)):
            label, op, value = matcher.groups()
            if label in SCRAPE_LABELS:
                continue
            if label not in labels:
                fail(f"{where}: {base} has no label {label!r}")
            elif op in ("=", "!=") and value not in labels[label]:
                fail(f"{where}: {base} has no {label}={value!r} (documented: "
                     f"{', '.join(sorted(labels[label]))})")


def resolve(series, metrics):
    """The documented metric a series belongs to, or None."""
    if series in metrics:
        kind, _ = metrics[series]
        return None if kind == "histogram" else series
    for suffix in HISTOGRAM_SUFFIXES:
        base = series[: -len(suffix)]
        if series.endswith(suffix) and metrics.get(base, ("",))[0] == "histogram":
            return base
    return None


def check_dashboard(metrics):
    with open(DASHBOARD, encoding="utf-8") as f:
        try:
            dashboard = json.load(f)
        except json.JSONDecodeError as e:
            sys.exit(f"check.py: {DASHBOARD} is not valid JSON: {e}")

    def need(obj, key, kind, where):
        if not isinstance(obj.get(key), kind):
            fail(f"{where}: {key!r} missing or not {kind.__name__}")
            return False
        return True

    for key, kind in [("title", str), ("uid", str), ("schemaVersion", int),
                      ("panels", list), ("templating", dict), ("time", dict)]:
        need(dashboard, key, kind, "dashboard")
    uid = dashboard.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
        fail("dashboard: uid must be 1 to 40 of [A-Za-z0-9_-]")

    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    source = variables.get("datasource", {})
    if source.get("type") != "datasource" or source.get("query") != "prometheus":
        fail("dashboard: no `datasource` variable of Prometheus data sources")
    queries = []
    for name, variable in variables.items():
        if variable.get("type") == "query":
            query = variable.get("query")
            queries.append((f"variable {name}", query.get("query") if isinstance(query, dict) else query))

    ids = set()
    for panel in dashboard.get("panels", []):
        where = f"panel {panel.get('id')} ({panel.get('title')!r})"
        for key, kind in [("id", int), ("type", str), ("title", str), ("gridPos", dict),
                          ("datasource", dict), ("targets", list)]:
            need(panel, key, kind, where)
        if panel.get("id") in ids:
            fail(f"{where}: duplicate panel id")
        ids.add(panel.get("id"))
        if panel.get("type") not in ("timeseries", "stat"):
            fail(f"{where}: unexpected panel type {panel.get('type')!r}")
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "hwxy") or grid.get("x", 0) + grid.get("w", 0) > 24:
            fail(f"{where}: gridPos needs integer h, w, x, y within 24 columns")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"{where}: data source is not the ${{datasource}} variable")
        if not panel.get("targets"):
            fail(f"{where}: no queries")
        refs = set()
        for target in panel.get("targets", []):
            if not need(target, "expr", str, where) or not need(target, "refId", str, where):
                continue
            if target["refId"] in refs:
                fail(f"{where}: duplicate refId {target['refId']}")
            refs.add(target["refId"])
            queries.append((f"{where} {target['refId']}", target["expr"]))

    for where, expr in queries:
        check_references(f"dashboard {where}", expr, metrics)

    text = "\n".join(expr for _, expr in queries)
    for metric in metrics:
        if metric not in text:
            fail(f"dashboard: no query shows {metric}")
    wanted = {
        "rotations by outcome": r"by \(outcome\) \(rate\(token_rotation_rotations_total",
        "reuse detected": r'token_rotation_rotations_total\{outcome="reuse_detected"',
        "unknown tokens": r"token_rotation_unknown_tokens_total",
        "rejections by reason": r"by \(reason\) \(rate\(token_rotation_rejections_total",
        "store latency p50": r"histogram_quantile\(0\.5, sum by \(le[^)]*\) \(rate\(token_rotation_store_duration_seconds_bucket",
        "store latency p99": r"histogram_quantile\(0\.99, sum by \(le[^)]*\) \(rate\(token_rotation_store_duration_seconds_bucket",
        "store errors by kind": r"by \([^)]*kind[^)]*\) \(rate\(token_rotation_store_errors_total",
    }
    for what, pattern in wanted.items():
        if not re.search(pattern, text):
            fail(f"dashboard: no query for {what}")
    return queries


def check_rules(metrics):
    with open(RULES, encoding="utf-8") as f:
        rules = f.read()
    exprs = "\n".join(line for line in rules.splitlines() if not line.lstrip().startswith("#"))
    check_references("alerts.yml", exprs, metrics)
    wanted = {
        "reuse detected": r'token_rotation_rotations_total\{outcome="reuse_detected"\}',
        "store errors": r"token_rotation_store_errors_total",
        "503s": r'token_rotation_rejections_total\{reason="store_unavailable"\}',
        "store latency p99": r"histogram_quantile\(0\.99,\s*sum by \([^)]*le\) \(rate\(token_rotation_store_duration_seconds_bucket",
        "unknown tokens": r"token_rotation_unknown_tokens_total",
    }
    for what, pattern in wanted.items():
        if not re.search(pattern, exprs):
            fail(f"alerts.yml: no rule for {what}")


def check_promql(queries, promtool):
    """Loads every dashboard query as a recording rule: promtool parses it as PromQL."""
    substitutions = {"$__rate_interval": "5m", "$__range": "1h", "$job": ".*"}
    lines = ["groups:", "  - name: dashboard-queries", "    rules:"]
    for i, (_, expr) in enumerate(queries):
        for var, value in substitutions.items():
            expr = expr.replace(var, value)
        if expr.startswith("label_values("):
            continue  # a Grafana function, not PromQL
        if "$" in expr:
            fail(f"dashboard: a variable check.py does not replace in {expr!r}")
        lines += [f"      - record: dashboard:query_{i}", f"        expr: {json.dumps(expr)}"]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        result = subprocess.run([promtool, "check", "rules", f.name],
                                capture_output=True, text=True)
        if result.returncode != 0:
            fail("dashboard queries do not parse as PromQL:\n" + result.stdout + result.stderr)
    finally:
        os.unlink(f.name)


def main():
    metrics = documented_metrics()
    queries = check_dashboard(metrics)
    check_rules(metrics)
    if len(sys.argv) > 1:
        check_promql(queries, sys.argv[1])
    if errors:
        print("\n".join(f"check.py: {e}" for e in errors), file=sys.stderr)
        sys.exit(1)
    print(f"dashboards: {len(queries)} dashboard queries and the alert rules name only "
          f"the {len(metrics)} documented metrics and their label values")


if __name__ == "__main__":
    main()
