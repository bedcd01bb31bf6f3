#!/usr/bin/env python3
"""The PromQL inside vigil's Grafana dashboards, ready to send to Prometheus.

`exprs(path)` lists every Prometheus target of a dashboard (panels nested in rows
included; Loki and other non-Prometheus targets skipped) as (panel title, expr).
`concrete(expr)` replaces Grafana's variables so the result is plain PromQL for
/api/v1/query: intervals become durations, template variables become `.*`.

Standard library only. As a script it prints `title<TAB>concrete expr` per target:
    python3 scripts/dashboard_exprs.py deploy/grafana/dashboards/*.json
"""

import json
import re
import sys

# Grafana's built-in interval variables, longest first so `$__range_s` is not read as
# `$__range` followed by `_s`.
_BUILTIN_RANGE_VARS = ("__rate_interval", "__interval_ms", "__interval", "__range_ms", "__range_s", "__range")

# `$name`, `${name}`, `${name:format}` and the deprecated `[[name]]`; not `$1`, which
# is label_replace's capture group.
_VAR = re.compile(r"\$\{([A-Za-z_]\w*)(?::[^}]*)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)(?::[^\]]*)?\]\]")


def _is_prometheus(datasource, inherited):
    """A target's datasource, or its panel's when it has none, is Prometheus."""
    ds = datasource if datasource is not None else inherited
    if ds is None:
        # No datasource anywhere: Grafana uses the default, which vigil provisions as
        # Prometheus.
        return True
    if isinstance(ds, str):
        return "loki" not in ds.lower()
    kind = ds.get("type")
    if kind is None:
        return ds.get("uid") not in ("loki",)
    return kind == "prometheus"


def _panels(panels):
    """Every panel, depth first, including those inside (collapsed) rows."""
    for panel in panels or []:
        yield panel
        yield from _panels(panel.get("panels"))


def exprs(path):
    """Every Prometheus target expression of the dashboard at `path`.

    Returns a list of (panel_title, expr) in panel order. Hidden targets are kept:
    they still have to parse and run.
    """
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    out = []
    for panel in _panels(dashboard.get("panels")):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if not expr:
                continue
            if _is_prometheus(target.get("datasource"), panel.get("datasource")):
                out.append((panel.get("title", ""), expr))
    return out


def concrete(expr, rate_interval="1m", interval="15s", range_="1h"):
    """`expr` with Grafana variables substituted: plain PromQL for /api/v1/query.

    `$__rate_interval` -> `rate_interval`, `$__interval` -> `interval`, `$__range` ->
    `range_` (and their `_ms`/`_s` forms as numbers); every template variable
    (`$model`, `${instance}`, `${job:regex}`, ...) -> `.*`, which is what the
    dashboards' "All" selects.
    """
    durations = {
        "__rate_interval": rate_interval,
        "__interval": interval,
        "__range": range_,
        "__interval_ms": str(_seconds(interval) * 1000),
        "__range_ms": str(_seconds(range_) * 1000),
        "__range_s": str(_seconds(range_)),
    }
    assert set(durations) == set(_BUILTIN_RANGE_VARS)

    def replace(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in durations:
            return durations[name]
        if name.startswith("__"):
            raise ValueError(f"unsupported Grafana variable ${name} in {expr!r}")
        return ".*"

    return _VAR.sub(replace, expr)


def _seconds(duration):
    """Seconds in a Prometheus duration such as `1m`, `90s`, `1h30m`."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    total = sum(int(n) * units[u] for n, u in parts)
    return int(total) if total == int(total) else total


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for path in argv[1:]:
        for title, expr in exprs(path):
            print(f"{title}\t{concrete(expr)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
