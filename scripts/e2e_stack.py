#!/usr/bin/env python3
"""End-to-end test of the monitoring stack under deploy/, with the real programs.

On loopback, with free ports, this starts `vigil up`, Alertmanager with the shipped
alertmanager.yml and Prometheus with the shipped prometheus.yml and alert_rules.yml.
The shipped files are rewritten only for addresses and intervals (scrape and
evaluation every second, alert `for:` durations and Alertmanager's grouping waits
shortened), never in their expressions. Then it drives traffic with `vigil load` and
asserts through Prometheus's HTTP API:

1. every scrape target is up;
2. every alert rule evaluates without error, and every PromQL expression of the rules
   and of the Grafana dashboards runs without error; the core ones return data;
3. one real alert travels the whole chain: drifted traffic -> FeatureDrift firing in
   Prometheus -> Alertmanager -> the collector's /alerts webhook -> an open incident in
   /incidents -> the drift clears with normal traffic -> the incident is resolved;
4. a fleet: two `vigil serve` replicas forwarding to one `vigil collector` on a real
   PostgreSQL (Debian's, started here). Drifted traffic to one replica moves the
   fleet-wide PSI recording rule and fires FeatureDrift for the model and feature,
   while the other replica's own PSI stays low; the incident opens in the collector on
   PostgreSQL; every answered prediction of both replicas is stored there once.
   Then `vigil load --feedback 1 --label-noise 0.3` through both replicas sends ground
   truth with 30 % wrong labels: the collector's model_accuracy equals the right share
   and ModelAccuracyDrop fires against the card's baseline, and opens an incident.

Usage: scripts/e2e-stack [path/to/vigil]   (run through the wrapper, which installs
Debian's prometheus, prometheus-alertmanager and python3-yaml when missing).
Standard library + PyYAML only.
"""

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashboard_exprs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
DASHBOARDS = os.path.join(DEPLOY, "grafana", "dashboards")

# Dashboard panels that must show data after a few seconds of normal traffic; the rest
# may be legitimately empty on a healthy system (5xx ratios, dropped logs, spools).
CORE_EXPR_PATTERNS = [
    r"\bup\b",
    r"http_requests_total",
    r"http_request_duration_seconds_bucket",
    r"predictions_total",
    r"prediction_latency_seconds_bucket",
    r"prediction_queue_seconds_bucket",
    r"prediction_confidence_bucket",
    r"predictions_by_class_total",
    r"model_loaded",
    r"model_feature_drift_psi",
    r"model_feature_bin_total",
    r"logging_predictions_total",
    r"logging_db_initialized",
    r"process_resident_memory_bytes",
]
# Patterns that make an expression optional even if it matches a core pattern above:
# error shares (no errors on a healthy run) and comparisons that filter to nothing.
OPTIONAL_EXPR_PATTERNS = [
    r'status\s*=~?\s*"5',
    r'status\s*=\s*"error"',
    r"prediction_errors_total",
    r"\bunless\b",
    r"(?<![=!<>])(>|<)(?!=)\s*[0-9]",
    r"==\s*0",
    r"\babsent\(",
]

class Failure(Exception):
    pass


def log(msg):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def as_postgres(bin_dir, tool, *args):
    """Runs a PostgreSQL tool, as the user postgres when we are root."""
    argv = [os.path.join(bin_dir, tool), *args]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise Failure(f"{tool} failed: {done.stdout}{done.stderr}")


def get_json(url):
    status, text = http("GET", url)
    if status != 200:
        raise Failure(f"GET {url} -> {status}: {text[:500]}")
    return json.loads(text)


def wait_for(what, check, timeout=60.0, interval=0.25):
    """Polls `check()` until it returns a truthy value; that value is returned."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
        except (OSError, Failure, ValueError) as e:
            last = e
        time.sleep(interval)
    raise Failure(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


class Stack:
    def __init__(self, vigil):
        self.vigil = vigil
        self.tmp = tempfile.mkdtemp(prefix="vigil-e2e-")
        self.procs = {}
        self.postgres = None
        # Where Prometheus's shipped targets point: the `up` stack's one inference
        # service, or a fleet's replicas.
        self.replicas = []

    # --- processes -----------------------------------------------------------
    def start(self, name, argv):
        out = open(os.path.join(self.tmp, f"{name}.log"), "w")
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        log(f"started {name}: {' '.join(argv)}")

    def alive(self, name):
        if self.procs[name].poll() is not None:
            raise Failure(f"{name} exited with {self.procs[name].returncode}")

    def logs(self, name):
        with open(os.path.join(self.tmp, f"{name}.log")) as f:
            return f.read()

    def stop(self, keep):
        for name, p in self.procs.items():
            if p.poll() is None:
                p.terminate()
        for name, p in self.procs.items():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.postgres:
            as_postgres(self.postgres["bin"], "pg_ctl", "-D", self.postgres["data"], "-m", "immediate", "-w", "stop")
        if keep:
            log(f"logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- vigil ---------------------------------------------------------------
    def start_vigil(self):
        self.start(
            "vigil",
            [self.vigil, "up", "--port", "0", "--collector-port", "0",
             "--data-dir", os.path.join(self.tmp, "data")],
        )

        def bound():
            self.alive("vigil")
            found = {}
            for line in self.logs("vigil").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("message") == "listening":
                    found[entry["service"]] = entry["address"]
            return found if {"inference", "collector"} <= found.keys() else None

        found = wait_for("vigil to listen", bound, timeout=60)
        self.inference = "http://" + found["inference"]
        self.collector = "http://" + found["collector"]
        self.replicas = [self.inference]
        wait_for("inference ready", lambda: http("GET", self.inference + "/health/ready")[0] == 200)
        log(f"vigil up: inference {self.inference}, collector {self.collector}")

    def listening(self, name, service):
        """The address `name` logged for `service` once it listens."""
        def bound():
            self.alive(name)
            for line in self.logs(name).splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("message") == "listening" and entry.get("service") == service:
                    return "http://" + entry["address"]
            return None

        return wait_for(f"{name} to listen", bound, timeout=60)

    def start_postgres(self):
        """Debian's PostgreSQL in a cluster of its own on a free port (as the user
        postgres when we are root: it refuses to run as root)."""
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not versions:
            raise Failure("PostgreSQL is not installed (scripts/install-test-deps installs it)")
        bin_dir = os.path.dirname(versions[-1])
        root = os.path.join(self.tmp, "pg")
        os.makedirs(root)
        if os.geteuid() == 0:
            # mkdtemp makes the stack's directory private: postgres must pass through it.
            os.chmod(self.tmp, 0o755)
            subprocess.run(["chown", "-R", "postgres:postgres", root], check=True)
        data = os.path.join(root, "data")
        as_postgres(bin_dir, "initdb", "-A", "trust", "-U", "vigil", "-D", data)
        port = free_port()
        as_postgres(bin_dir, "pg_ctl", "-D", data, "-l", os.path.join(root, "server.log"), "-w", "start",
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")
        self.postgres = {"bin": bin_dir, "data": data}
        done = subprocess.run([os.path.join(bin_dir, "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "vigil",
                               "-d", "postgres", "-c", "CREATE DATABASE vigil"], capture_output=True, text=True)
        if done.returncode != 0:
            raise Failure(f"create database: {done.stderr}")
        log(f"PostgreSQL on 127.0.0.1:{port}")
        return f"postgres://vigil@127.0.0.1:{port}/vigil"

    def start_fleet(self, database_url):
        """A collector on `database_url` and two `vigil serve` replicas forwarding to it."""
        self.start("collector", [self.vigil, "collector", "--host", "127.0.0.1", "--port", "0",
                                 "--database-url", database_url, "--data-dir", os.path.join(self.tmp, "c")])
        self.collector = self.listening("collector", "collector")
        for name in ("replica-a", "replica-b"):
            self.start(name, [self.vigil, "serve", "--host", "127.0.0.1", "--port", "0",
                              "--collector-url", self.collector, "--data-dir", os.path.join(self.tmp, name)])
            self.replicas.append(self.listening(name, "inference"))
        self.inference = self.replicas[0]
        for replica in self.replicas:
            wait_for("replica ready", lambda: http("GET", replica + "/health/ready")[0] == 200)
        log(f"fleet: replicas {self.replicas}, collector {self.collector} on PostgreSQL")

    def load(self, *args, target=None):
        """Runs `vigil load`; its own contract check (exit 1 on any wrong answer) holds."""
        argv = [self.vigil, "load", "--target", target or self.inference, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise Failure(f"vigil load {' '.join(args)} exited {done.returncode}:\n"
                          f"{done.stdout}\n{done.stderr}")
        report = json.loads(done.stdout)
        log(f"vigil load {' '.join(args)}: sent {report['sent']} at {report['rate']}/s, "
            f"statuses {report['statuses']}")
        return report

    # --- Alertmanager --------------------------------------------------------
    def start_alertmanager(self):
        with open(os.path.join(DEPLOY, "alertmanager", "alertmanager.yml")) as f:
            config = yaml.safe_load(f)
        receivers = 0
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                # Address only: the path stays the shipped one.
                hook["url"] = re.sub(r"^http://collector:8001", self.collector, hook["url"])
                receivers += 1
        if receivers == 0:
            raise Failure("alertmanager.yml has no webhook receiver")
        # Intervals only: notify quickly instead of after 30 s / 5 min.
        config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1m")
        path = os.path.join(self.tmp, "alertmanager.yml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        self.am_port = free_port()
        self.alertmanager = f"http://127.0.0.1:{self.am_port}"
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        self.start("alertmanager", [
            binary, f"--config.file={path}",
            f"--storage.path={os.path.join(self.tmp, 'am-data')}",
            f"--web.listen-address=127.0.0.1:{self.am_port}",
            "--cluster.listen-address=",
        ])

        def ready():
            self.alive("alertmanager")
            return http("GET", self.alertmanager + "/-/ready")[0] == 200

        wait_for("alertmanager ready", ready)

    # --- Prometheus ----------------------------------------------------------
    def start_prometheus(self):
        self.prom_port = free_port()
        self.prometheus = f"http://127.0.0.1:{self.prom_port}"
        addresses = {
            "inference:8000": [r.removeprefix("http://") for r in self.replicas],
            "collector:8001": self.collector.removeprefix("http://"),
            "localhost:9090": f"127.0.0.1:{self.prom_port}",
            "alertmanager:9093": f"127.0.0.1:{self.am_port}",
        }
        with open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")) as f:
            config = yaml.safe_load(f)
        config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
        # Every address is rewritten (Alertmanager's twice: scraped and alerted to).
        rewritten = set()
        for section in config["scrape_configs"] + config["alerting"]["alertmanagers"]:
            for static in section.get("static_configs", []):
                targets = []
                for t in static["targets"]:
                    new = addresses.get(t, t)
                    if new != t:
                        rewritten.add(t)
                    targets.extend(new if isinstance(new, list) else [new])
                static["targets"] = targets
        if rewritten != set(addresses):
            raise Failure(f"prometheus.yml: expected to rewrite {sorted(addresses)}, did {sorted(rewritten)}")

        # Rules: the shipped file with only its `for:` durations shortened.
        rule_paths = []
        for rule_file in config["rule_files"]:
            with open(os.path.join(DEPLOY, "prometheus", rule_file)) as f:
                rules = yaml.safe_load(f)
            for group in rules["groups"]:
                for rule in group["rules"]:
                    if rule.get("for") not in (None, "0m", "0s"):
                        rule["for"] = "3s"
            path = os.path.join(self.tmp, os.path.basename(rule_file))
            with open(path, "w") as f:
                yaml.safe_dump(rules, f, sort_keys=False)
            rule_paths.append(path)
        config["rule_files"] = rule_paths
        self.rule_files = rule_paths
        path = os.path.join(self.tmp, "prometheus.yml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        check = subprocess.run(["promtool", "check", "config", path], capture_output=True, text=True)
        if check.returncode != 0:
            raise Failure(f"promtool check config on the rewritten config:\n{check.stdout}{check.stderr}")
        self.start("prometheus", [
            "prometheus", f"--config.file={path}",
            f"--storage.tsdb.path={os.path.join(self.tmp, 'prom-data')}",
            f"--web.listen-address=127.0.0.1:{self.prom_port}",
        ])

        def ready():
            self.alive("prometheus")
            return http("GET", self.prometheus + "/-/ready")[0] == 200

        wait_for("prometheus ready", ready)

    def query(self, expr):
        url = self.prometheus + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, text = http("GET", url)
        body = json.loads(text)
        if status != 200 or body.get("status") != "success":
            raise Failure(f"query failed ({status}): {expr}\n{body.get('error', text)}")
        return body["data"]["result"]

    def alerts(self, name):
        alerts = get_json(self.prometheus + "/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name]

    def incidents(self, status, name):
        body = get_json(f"{self.collector}/incidents?status={status}")
        return [i for i in body["incidents"] if i["alertname"] == name]


# --- the checks ---------------------------------------------------------------

def check_targets(stack):
    def all_up():
        targets = get_json(stack.prometheus + "/api/v1/targets")["data"]["activeTargets"]
        jobs = {t["labels"]["job"]: t["health"] for t in targets}
        if set(jobs) != {"vigil-inference", "vigil-collector", "alertmanager", "prometheus"}:
            raise Failure(f"unexpected scrape jobs: {jobs}")
        return all(h == "up" for h in jobs.values()) and jobs

    jobs = wait_for("every scrape target up", all_up, timeout=30)
    log(f"targets up: {sorted(jobs)}")


def check_rules_evaluate(stack):
    """Every rule has been evaluated by Prometheus itself, with no error."""
    def evaluated():
        groups = get_json(stack.prometheus + "/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        bad = [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"]
        if any(err for _, err in bad):
            raise Failure(f"rules with evaluation errors: {bad}")
        return not bad and rules

    rules = wait_for("every rule evaluated", evaluated, timeout=30)
    names = sorted({r["name"] for r in rules})
    for required in ["HighErrorRate", "ModelNotLoaded", "SlowPredictions", "DatabaseNotAccessible",
                     "HighDefectRate", "ServiceDown", "HighHTTPErrorRate", "FeatureDrift",
                     "PredictionLogBacklog", "LogsDropped", "ModelAccuracyDrop",
                     "AlertmanagerUnreachable", "AlertNotificationsFailing"]:
        if required not in names:
            raise Failure(f"alert {required} missing from the loaded rules: {names}")
    log(f"{len(rules)} rules loaded and evaluated without error")


def is_core(expr):
    return (any(re.search(p, expr) for p in CORE_EXPR_PATTERNS)
            and not any(re.search(p, expr) for p in OPTIONAL_EXPR_PATTERNS))


def check_expressions(stack):
    exprs = []
    for path in stack.rule_files:
        with open(path) as f:
            for group in yaml.safe_load(f)["groups"]:
                for rule in group["rules"]:
                    name = rule.get("alert") or rule.get("record")
                    exprs.append((f"rule {name}", rule["expr"], False))
                    # The quantity behind an alert (its expression without the
                    # threshold) must itself have data where it is a core signal.
                    bare = re.sub(r"\s*(>|<|==|!=|>=|<=)\s*[0-9.e+-]+\s*$", "", rule["expr"].strip())
                    if bare != rule["expr"].strip():
                        exprs.append((f"rule {name} (without threshold)", bare, is_core(bare)))
    dashboards = sorted(f for f in os.listdir(DASHBOARDS) if f.endswith(".json"))
    if len(dashboards) < 2:
        raise Failure(f"expected two dashboards in {DASHBOARDS}, found {dashboards}")
    for name in dashboards:
        for title, expr in dashboard_exprs.exprs(os.path.join(DASHBOARDS, name)):
            concrete = dashboard_exprs.concrete(expr, rate_interval="30s", interval="5s", range_="5m")
            exprs.append((f"{name}: {title}", concrete, is_core(concrete)))

    def run_all(final):
        errors, empty = [], []
        for where, expr, core in exprs:
            try:
                result = stack.query(expr)
            except Failure as e:
                errors.append(f"{where}: {e}")
                continue
            if core and not result:
                empty.append(f"{where}: {expr}")
        if errors:
            raise Failure("PromQL errors:\n" + "\n".join(errors))
        if empty and final:
            raise Failure("core expressions returned no data:\n" + "\n".join(empty))
        return not empty

    # Rates need a few scrapes; retry until the core expressions have data.
    if not any(run_all(False) for _ in iter_until(30)):
        run_all(True)
    cores = sum(1 for e in exprs if e[2])
    log(f"{len(exprs)} expressions ran without error; {cores} core ones returned data")


def iter_until(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        yield
        time.sleep(1)


def check_alert_chain(stack):
    name = "FeatureDrift"
    if stack.incidents("open", name) or stack.alerts(name):
        raise Failure(f"{name} active before any drift: {stack.alerts(name)}")

    log("driving drifted traffic")
    stack.load("--drifted", "1", "--requests", "1200", "--rate", "400", "--concurrency", "8")
    firing = wait_for(f"{name} firing in Prometheus",
                      lambda: [a for a in stack.alerts(name) if a["state"] == "firing"], timeout=60)
    features = sorted(a["labels"]["feature"] for a in firing)
    log(f"{name} firing in Prometheus for {features}")
    opened = wait_for(f"{name} incidents open in the collector",
                      lambda: stack.incidents("open", name), timeout=60)
    for incident in opened:
        if incident["labels"].get("model") != "defect-detector" or not incident["fingerprint"]:
            raise Failure(f"incident does not carry the alert's labels: {incident}")
    log(f"{len(opened)} incident(s) open: {[i['labels'].get('feature') for i in opened]}")

    # FeatureDrift reads the fleet's last hour: the drifted rows must become a small
    # share of it (12,000 normal rows against 1,200 drifted: PSI well under 0.25).
    log("driving normal traffic until the drifted rows are a small share of the hour")
    stack.load("--requests", "600", "--batch", "20", "--rate", "200", "--concurrency", "8")
    wait_for(f"{name} no longer firing",
             lambda: not [a for a in stack.alerts(name) if a["state"] == "firing"], timeout=60)

    fingerprints = {i["fingerprint"] for i in opened}

    def resolved():
        still_open = {i["fingerprint"] for i in stack.incidents("open", name)}
        done = {i["fingerprint"] for i in stack.incidents("resolved", name)}
        return not (fingerprints & still_open) and fingerprints <= done

    wait_for(f"{name} incidents resolved in the collector", resolved, timeout=60)
    log(f"all {len(fingerprints)} {name} incident(s) resolved")

    # The metrics follow the store right after each webhook call.
    def counted():
        metrics = http("GET", stack.collector + "/metrics")[1]
        total = re.search(r'^incidents_total\{alertname="FeatureDrift",severity="warning"\} ([0-9.]+)$', metrics, re.M)
        if not total or float(total.group(1)) < len(fingerprints):
            raise Failure("collector's incidents_total did not count the incidents")
        # Other alerts may be open (drifted inputs also raise HighDefectRate): the
        # gauge must agree with the incidents the API lists as open.
        still_open = len(get_json(f"{stack.collector}/incidents?status=open")["incidents"])
        gauge = re.search(r"^incidents_open ([0-9.]+)$", metrics, re.M)
        if not gauge or float(gauge.group(1)) != still_open:
            raise Failure(f"incidents_open is {gauge and gauge.group(1)}, the API lists {still_open} open")
        return True

    wait_for("the collector's incident metrics", counted, timeout=10)

    # AlertmanagerUnreachable and AlertNotificationsFailing read Prometheus's and
    # Alertmanager's own counters: the names exist in these versions, the deliveries
    # above are counted in them, and none failed.
    def value(expr):
        result = stack.query(expr)
        return float(result[0]["value"][1]) if result else None

    def deliveries_counted():
        sent = value("sum(prometheus_notifications_sent_total)")
        notified = value('sum(alertmanager_notification_requests_total{integration="webhook"})')
        return sent and notified and (sent, notified)

    sent, notified = wait_for("the alert deliveries in Prometheus's and Alertmanager's counters",
                              deliveries_counted, timeout=30)
    failed = [value("sum(prometheus_notifications_errors_total)"),
              value('sum(alertmanager_notification_requests_failed_total{integration="webhook"})')]
    if failed != [0.0, 0.0]:
        raise Failure(f"alert deliveries failed (Prometheus, Alertmanager's webhook): {failed}")
    for delivery in ("AlertmanagerUnreachable", "AlertNotificationsFailing"):
        if stack.alerts(delivery):
            raise Failure(f"{delivery} active on a working stack: {stack.alerts(delivery)}")
    log(f"{sent:.0f} alerts sent to Alertmanager, {notified:.0f} webhook attempts, none failed")


def metric(url, series):
    """The value of one series on a /metrics page (0 when absent)."""
    text = http("GET", url + "/metrics")[1]
    match = re.search("^" + re.escape(series) + r" ([0-9.eE+-]+|NaN)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def check_fleet_drift(stack):
    name = "FeatureDrift"
    a, b = stack.replicas
    log("normal traffic to both replicas")
    for replica in (a, b):
        stack.load("--requests", "60", "--batch", "10", "--rate", "100", target=replica)
    log("drifted traffic to replica a only")
    stack.load("--drifted", "1", "--requests", "1200", "--rate", "400", "--concurrency", "8", target=a)
    psi = 'model_feature:model_feature_psi:1h{model="defect-detector", feature="temperature_c"}'

    def fleet_psi():
        result = stack.query(psi)
        return result and float(result[0]["value"][1]) > 0.25 and result

    moved = wait_for("the fleet PSI recording rule above 0.25", fleet_psi, timeout=60)
    log(f"fleet PSI of temperature_c: {float(moved[0]['value'][1]):.2f}")
    firing = wait_for(f"{name} firing for the fleet",
                      lambda: [x for x in stack.alerts(name) if x["state"] == "firing"
                               and x["labels"].get("feature") == "temperature_c"], timeout=60)
    if any("instance" in x["labels"] for x in firing):
        raise Failure(f"the fleet alert names an instance: {firing}")
    # The undrifted replica's own view of its inputs stays calm.
    local = 'model_feature_drift_psi{model="defect-detector",feature="temperature_c"}'
    calm = metric(b, local)
    if not calm < 0.25:
        raise Failure(f"replica b saw no drift, yet its own PSI is {calm}")
    log(f"{name} firing for the fleet; replica b's own PSI {calm:.3f}")
    wait_for(f"{name} incident open in the collector on PostgreSQL",
             lambda: stack.incidents("open", name), timeout=60)

    # Exactly once: every prediction either replica answered is one stored row.
    def answered():
        series = 'predictions_total{model="defect-detector",version="1.0.0",status="success"}'
        return sum(metric(r, series) for r in (a, b))

    def stored():
        want = answered()
        got = metric(stack.collector, 'logging_predictions_total{model="defect-detector"}')
        if got > want:
            raise Failure(f"{got} rows stored for {want} predictions")
        return got == want and got

    rows = wait_for("every answered prediction stored in PostgreSQL", stored, timeout=60)
    log(f"{rows:.0f} predictions answered by the replicas, {rows:.0f} rows in PostgreSQL")


def check_accuracy_drop(stack):
    """Ground truth with 30 % wrong labels, through both replicas' answers, fires
    ModelAccuracyDrop from the collector's accuracy against the card's baseline."""
    name = "ModelAccuracyDrop"
    a, b = stack.replicas
    reports = [stack.load("--requests", "150", "--batch", "2", "--rate", "200",
                          "--feedback", "1", "--label-noise", "0.3",
                          "--collector", stack.collector, "--seed", str(seed), target=replica)
               for seed, replica in ((11, a), (12, b))]
    labels = sum(r["feedback"]["labels"] for r in reports)
    wrong = sum(r["feedback"]["wrong"] for r in reports)
    if any(r["feedback"]["failed"] for r in reports) or labels != 600:
        raise Failure(f"labels not all taken: {[r['feedback'] for r in reports]}")
    want = (labels - wrong) / labels
    accuracy = 'model_accuracy{model="defect-detector"}'

    def graded():
        result = stack.query(accuracy)
        return result and abs(float(result[0]["value"][1]) - want) < 1e-9 and result

    wait_for(f"model_accuracy at {want:.3f} in Prometheus", graded, timeout=60)
    firing = wait_for(f"{name} firing",
                      lambda: [x for x in stack.alerts(name) if x["state"] == "firing"
                               and x["labels"].get("model") == "defect-detector"], timeout=60)
    estimate = min(metric(r, 'model_estimated_accuracy{model="defect-detector"}') for r in (a, b))
    log(f"{name} firing: measured accuracy {want:.3f} on {labels} labels, "
        f"the replicas' estimate without labels {estimate:.3f}")
    wait_for(f"{name} incident open in the collector",
             lambda: stack.incidents("open", name), timeout=60)
    # The Grafana panels of classifier quality have data now.
    quality = r"model_accuracy|model_class_recall|model_feedback|model_calibration_error"
    panels = [(title, dashboard_exprs.concrete(expr, rate_interval="30s", interval="5s", range_="5m"))
              for title, expr in dashboard_exprs.exprs(os.path.join(DASHBOARDS, "vigil-models.json"))
              if re.search(quality, expr)]
    if len(panels) < 5:
        raise Failure(f"expected the ground-truth panels, found {panels}")

    def all_have_data():
        return all(stack.query(expr) for _, expr in panels)

    wait_for("data in every ground-truth panel", all_have_data, timeout=30)
    log(f"{len(panels)} ground-truth panel expressions return data")


def run_stack(vigil, name, setup, checks):
    """Starts a stack with `setup`, runs `checks` on it; True when they pass."""
    stack = Stack(vigil)
    ok = False
    started = time.monotonic()
    try:
        setup(stack)
        for check in checks:
            check(stack)
        for proc in stack.procs:
            stack.alive(proc)
        ok = True
        log(f"{name}: PASS in {time.monotonic() - started:.0f}s")
    except Failure as e:
        log(f"{name}: FAIL: {e}")
        for proc in stack.procs:
            tail = stack.logs(proc).splitlines()[-30:]
            print(f"--- last lines of {proc} ---", *tail, sep="\n", flush=True)
    finally:
        stack.stop(keep=not ok)
    return ok


def setup_up(stack):
    stack.start_vigil()
    stack.start_alertmanager()
    stack.start_prometheus()
    log("baseline traffic: good and invalid requests to both models")
    stack.load("--duration", "4s", "--rate", "100", "--invalid", "0.1")
    stack.load("--model", "digits", "--duration", "2s", "--rate", "50")


def setup_fleet(stack):
    stack.start_fleet(stack.start_postgres())
    stack.start_alertmanager()
    stack.start_prometheus()


def main():
    vigil = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/vigil"))
    if not os.access(vigil, os.X_OK):
        sys.exit(f"no vigil binary at {vigil}: build it first (cargo build -p vigil)")
    started = time.monotonic()
    ok = run_stack(vigil, "vigil up", setup_up,
                   [check_targets, check_rules_evaluate, check_expressions, check_alert_chain])
    ok = ok and run_stack(vigil, "fleet", setup_fleet, [check_targets, check_fleet_drift, check_accuracy_drop])
    if ok:
        log(f"PASS in {time.monotonic() - started:.0f}s")
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
