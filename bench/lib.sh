# Helpers shared by the bench scripts that drive `vigil serve` instances on loopback.
# Sourced, not run.

# up PORT: waits (up to 10 s) until the instance on PORT answers /health.
up() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/health" && return; sleep 0.1; done; }

# alive PID...: ends the script when a server it started has already exited (its port
# in use, most often).
alive() { for p in "$@"; do kill -0 "$p" 2>/dev/null || { echo "a side did not start (port in use?)" >&2; exit 1; }; done; }

# cpu PID: the process's CPU time so far (utime + stime), in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# thread_cpu PID NAME: CPU time so far (clock ticks) of the process's threads named NAME
# (e.g. vigil-forwarder: what storing costs apart from the request path).
thread_cpu() { cat /proc/"$1"/task/*/stat 2>/dev/null | awk -v n="($2)" '$2 == n {t += $14 + $15} END {print t + 0}'; }

# us_per_request TICKS WRK_OUTPUT: CPU microseconds per request of the run, for TICKS
# clock ticks of CPU spent during it.
us_per_request() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" '/requests in/ {printf "%.2f\n", t / hz * 1e6 / $1}' "$2"; }

# sent PORT: the instance's forwarded records (prediction_log_records_total{outcome="sent"}).
sent() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^prediction_log_records_total\{outcome="sent"\}/ {print $2}'; }

# settle PORT: waits until the instance's sent counter stops moving, so a forwarder
# still working through a backlog does not steal CPU from the next run.
settle() {
  local prev=-1 cur
  while :; do
    cur=$(sent "$1")
    [ "$cur" = "$prev" ] && return
    prev=$cur
    sleep 1
  done
}

# predicted PORT: predictions (and error records) the instance's models made.
predicted() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^predictions_total\{.*status="(success|error)"\}/ {n += $2} END {printf "%d", n}'; }

# stored PORT: records the collector on PORT stored.
stored() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^logging_predictions_total\{/ {n += $2} END {printf "%d", n}'; }

# drain PORT COLLECTOR_PORT: waits (up to 60 s) until the collector has stored every
# prediction the instance on PORT made, and prints how long that took in seconds;
# fails if it never does.
drain() {
  local from
  from=$(date +%s.%N)
  for _ in $(seq 1 3000); do [ "$(stored "$2")" = "$(predicted "$1")" ] && break; sleep 0.02; done
  [ "$(stored "$2")" = "$(predicted "$1")" ] || { echo "predictions of :$1 not all stored" >&2; return 1; }
  echo "$(date +%s.%N) - $from" | bc
}

# per_second WRK_OUTPUT [EXTRA_SECONDS=0]: the run's requests over its duration plus
# EXTRA_SECONDS (a drain after it).
per_second() { awk -v d="${2:-0}" '/requests in/ {sub("s,", "", $4); printf "%.2f\n", $1 / ($4 + d)}' "$1"; }

# answered PORT: 200s of POST /predict the instance on PORT has given so far.
answered() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^http_requests_total\{method="POST",route="\/predict",status="200"\}/ {printf "%d", $2}'; }

# median: the median of the numbers on stdin, one a line (the upper one of an even count).
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# interval: "LOW to HIGH at C %", a distribution-free interval for the median of the
# numbers on stdin: the order statistics x(k) and x(n-k+1) with the largest k for which
# P(Binomial(n, 1/2) < k) <= 2.5 %, and the confidence C that the true median lies
# between them (at least 95 % from 6 rounds; fewer rounds give less, and say so). A
# paired ratio whose interval holds 1 (or a target) is not resolved by the run. It
# takes the rounds as independent; this VM's drift makes neighbouring rounds alike, so
# it is the least uncertainty a run has, not all of it: an effect that one run's
# interval excludes 1 for still wants the same run with the sides swapped.
interval() {
  sort -n | awk '{a[NR] = $1}
    END {
      n = NR; if (n == 0) exit
      pm = 0.5 ^ n; cum = pm; k = 1
      while (k < n / 2) { pm = pm * (n - k + 1) / k; if (cum + pm > 0.025) break; cum += pm; k++ }
      printf "%s to %s at %.0f %%\n", a[k], a[n - k + 1], 100 * (1 - 2 * cum)
    }'
}
