// vigil dashboard. Polls /dashboard/api/overview every few seconds and draws it.
// Every string from the server goes into the page as text (textContent), never as
// HTML, so a model name or error message cannot run in the page.
"use strict";

(function () {
  const OVERVIEW = "/dashboard/api/overview";
  const SESSION = "/dashboard/session";
  const SPAN_S = 15 * 60;
  const COLORS = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#e67700", "#0b7285", "#5c940d"];

  const $ = (id) => document.getElementById(id);
  // `generation` changes at every sign-in and sign-out: an answer to a poll started
  // before is dropped, so a slow poll can neither bring the board back after sign-out
  // nor add its samples twice.
  const state = { timer: null, since: 0, samples: [], charts: {}, model: null, sampleSeconds: 5, last: null, generation: 0 };

  // ---- formatting ---------------------------------------------------------------
  const fmt = (x, digits) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits));
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %");
  const timeOf = (ms) => new Date(ms).toLocaleTimeString();

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function fill(tableId, rows, build) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement("tr");
      build(tr, r);
      body.appendChild(tr);
    }
  }

  // ---- charts -------------------------------------------------------------------
  function chart(id, series, opts) {
    const el = $(id);
    const width = Math.max(260, el.clientWidth || 300);
    const config = {
      width,
      height: 180,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: Object.assign({ auto: true }, opts && opts.y) },
      axes: [{}, { size: 50 }],
      series: [{}].concat(series.map((label, i) => ({
        label,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        spanGaps: false,
      }))),
    };
    el.replaceChildren();
    return new uPlot(config, [[]].concat(series.map(() => [])), el);
  }

  function setChart(id, labels, data, opts) {
    let c = state.charts[id];
    const key = labels.join("\u0001");
    if (!c || c.key !== key) {
      if (c) c.plot.destroy();
      c = { plot: chart(id, labels, opts), key };
      state.charts[id] = c;
    }
    c.plot.setData(data);
  }

  function resizeCharts() {
    for (const [id, c] of Object.entries(state.charts)) {
      const w = $(id).clientWidth;
      if (w > 0) c.plot.setSize({ width: w, height: 180 });
    }
  }

  function destroyCharts() {
    for (const c of Object.values(state.charts)) c.plot.destroy();
    state.charts = {};
  }

  // ---- requests -----------------------------------------------------------------
  function drawRequests(o) {
    const pts = o.http.points;
    const xs = pts.map((p) => p.t_ms / 1000);
    setChart("c-rate", ["req/s"], [xs, pts.map((p) => p.rate_per_s)]);
    setChart("c-errors", ["5xx %"], [xs, pts.map((p) => (p.requests ? 100 * p.error_rate : null))], { y: { range: [0, null] } });
    const lat = (k) => pts.map((p) => (p.requests ? p[k] : null));
    setChart("c-latency", ["p50", "p95", "p99"], [xs, lat("p50_ms"), lat("p95_ms"), lat("p99_ms")]);
    // The numbers: the last complete slot (the current one is still filling, and a
    // rate over a fraction of a second would mislead).
    const last = pts.length > 1 ? pts[pts.length - 2] : pts[pts.length - 1];
    if (last) {
      $("n-rate").textContent = fmt(last.rate_per_s, 1) + " req/s";
      $("n-errors").textContent = last.requests ? pct(last.error_rate) : "–";
      $("n-latency").textContent = last.requests
        ? fmt(last.p50_ms, 1) + " / " + fmt(last.p95_ms, 1) + " / " + fmt(last.p99_ms, 1) + " ms"
        : "–";
    }
    if (!o.analytics) $("n-rate").textContent = "analytics off";
    const mins = o.window_seconds >= 60 ? o.window_seconds / 60 + " minutes" : o.window_seconds + " seconds";
    $("window").textContent = mins;
    fill("routes", o.routes, (tr, r) => {
      cell(tr, r.method);
      cell(tr, r.route, "mono");
      cell(tr, r.count, "num");
      cell(tr, r.errors, "num");
      cell(tr, r.client_errors, "num");
      cell(tr, fmt(r.p50_ms, 2), "num");
      cell(tr, fmt(r.p95_ms, 2), "num");
      cell(tr, fmt(r.p99_ms, 2), "num");
    });
  }

  // ---- models -------------------------------------------------------------------
  function pointsOf(name) {
    return state.samples.map((s) => ({ t: s.t_ms / 1000, p: s.models.find((m) => m.model === name) || null }));
  }

  function latestPoint(name) {
    for (let i = state.samples.length - 1; i >= 0; i--) {
      const p = state.samples[i].models.find((m) => m.model === name);
      if (p) return p;
    }
    return null;
  }

  function maxPsi(p) {
    if (!p) return null;
    const v = p.drift.filter((x) => x !== null);
    return v.length ? Math.max(...v) : null;
  }

  function drawModels(o) {
    fill("models", o.models, (tr, m) => {
      const p = latestPoint(m.name);
      cell(tr, m.name + (m.default ? " (default)" : ""));
      cell(tr, m.version, "mono");
      cell(tr, m.status);
      cell(tr, p ? fmt(p.rate_per_s, 1) : "–", "num");
      cell(tr, p ? p.errors : "–", "num");
      cell(tr, p ? fmt(p.queue_ms, 3) : "–", "num");
      cell(tr, p ? fmt(p.compute_ms, 3) : "–", "num");
      cell(tr, p ? (m.task === "regression" ? "value " + fmt(p.value, 3) : fmt(p.confidence, 3)) : "–", "num");
      cell(tr, p && m.defect_labels.length ? pct(p.defect_rate) : "–", "num");
      cell(tr, fmt(maxPsi(p), 3), "num");
      cell(tr, m.versions.length ? m.versions.map((v) => v.version + (v.active ? "*" : "")).join(", ") : "–", "mono");
    });
    const pick = $("model-pick");
    const names = o.models.map((m) => m.name);
    if (pick.options.length !== names.length || names.some((n, i) => pick.options[i].value !== n)) {
      const keep = state.model;
      pick.replaceChildren();
      for (const n of names) {
        const opt = document.createElement("option");
        opt.value = n;
        opt.textContent = n;
        pick.appendChild(opt);
      }
      state.model = names.includes(keep) ? keep : o.default_model;
      pick.value = state.model;
    }
    const model = o.models.find((m) => m.name === state.model);
    if (model) drawModel(model);
    else clearModel();
  }

  // No model to chart (the last one was unloaded): no stale charts or numbers.
  function clearModel() {
    for (const id of ["c-predictions", "c-queue", "c-confidence", "c-classes", "c-drift", "c-defects"]) {
      if (state.charts[id]) {
        state.charts[id].plot.destroy();
        delete state.charts[id];
      }
    }
    for (const id of ["n-predictions", "n-queue", "n-confidence", "n-classes", "n-drift", "n-defects"]) {
      $(id).textContent = "–";
    }
  }

  function drawModel(m) {
    const pts = pointsOf(m.name);
    const xs = pts.map((x) => x.t);
    const col = (f) => pts.map((x) => (x.p ? f(x.p) : null));
    setChart("c-predictions", ["predictions/s", "errors/s"], [
      xs,
      col((p) => p.rate_per_s),
      col((p) => p.errors_per_s),
    ]);
    setChart("c-queue", ["queue", "compute"], [xs, col((p) => p.queue_ms), col((p) => p.compute_ms)]);
    const share = (p, i) => {
      const n = p.classes.reduce((a, b) => a + b, 0);
      return n ? p.classes[i] / n : null;
    };
    // A regressor has values, not confidences or classes: its mean value, and the
    // drift of its values against the card's bins, take those two panels.
    const regression = m.task === "regression";
    $("t-confidence").textContent = regression ? "Mean predicted value" : "Mean confidence";
    $("t-classes").textContent = regression ? "Predicted value drift (PSI)" : "Class mix";
    if (regression) {
      setChart("c-confidence", ["mean value"], [xs, col((p) => p.value)]);
      setChart("c-classes", ["value PSI"], [xs, col((p) => p.prediction_psi)]);
    } else {
      setChart("c-confidence", ["confidence"], [xs, col((p) => p.confidence)], { y: { range: [0, 1] } });
      setChart("c-classes", m.labels, [xs].concat(m.labels.map((_, i) => col((p) => share(p, i)))), { y: { range: [0, 1] } });
    }
    setChart("c-drift", m.drift_features.length ? m.drift_features : ["(no reference)"],
      [xs].concat((m.drift_features.length ? m.drift_features : [""]).map((_, i) => col((p) => (p.drift[i] === undefined ? null : p.drift[i])))));
    setChart("c-defects", ["defect rate"], [xs, col((p) => p.defect_rate)], { y: { range: [0, 1] } });

    const p = latestPoint(m.name);
    $("n-predictions").textContent = p ? fmt(p.rate_per_s, 1) + "/s" : "–";
    $("n-queue").textContent = p ? fmt(p.queue_ms, 3) + " / " + fmt(p.compute_ms, 3) + " ms" : "–";
    $("n-confidence").textContent = p ? fmt(regression ? p.value : p.confidence, 3) : "–";
    if (regression) $("n-classes").textContent = p ? fmt(p.prediction_psi, 3) : "–";
    else $("n-classes").textContent = p && p.classes.some((c) => c > 0)
      ? m.labels.map((l, i) => l + " " + pct(share(p, i))).join(", ")
      : "–";
    $("n-drift").textContent = p ? "max " + fmt(maxPsi(p), 3) : "–";
    $("n-defects").textContent = p && m.defect_labels.length ? pct(p.defect_rate) : "no defect classes";
  }

  // ---- incidents, events, quality ------------------------------------------------
  function drawLists(o) {
    const inc = o.incidents;
    $("incidents-source").textContent = inc.source === "none"
      ? "(no collector configured)"
      : "from the collector" + (inc.source === "in_process" ? " in this process" : "");
    $("incidents-empty").textContent = inc.error ? "Could not read incidents: " + inc.error : "None.";
    $("incidents-empty").hidden = inc.open.length > 0 && !inc.error;
    $("incidents").hidden = inc.open.length === 0;
    fill("incidents", inc.open, (tr, i) => {
      cell(tr, i.opened_at);
      cell(tr, i.alertname);
      cell(tr, i.severity);
      cell(tr, i.summary);
    });
    $("events-empty").hidden = o.events.length > 0;
    $("events").hidden = o.events.length === 0;
    fill("events", o.events, (tr, e) => {
      cell(tr, e.timestamp, "mono");
      cell(tr, e.level, "level-" + String(e.level));
      cell(tr, e.message);
      cell(tr, e.error || e.reason || e.route || e.model || "");
      cell(tr, e.request_id || "", "mono");
    });
    const estimates = o.models
      .map((m) => [m.name, latestPoint(m.name)])
      .filter(([, p]) => p && p.estimated_accuracy !== null && p.estimated_accuracy !== undefined)
      .map(([name, p]) => name + " " + fmt(p.estimated_accuracy, 3));
    const q = o.quality;
    const measured = q.models.map((m) => m.model + " " + (m.accuracy !== null
      ? fmt(m.accuracy, 3) + (m.baseline_accuracy !== null ? " (card says " + fmt(m.baseline_accuracy, 3) + ")" : "")
      : "MAE " + fmt(m.mae, 3)) + " on " + m.labels + " labels");
    const why = q.error !== null ? "the collector did not answer (" + q.error + ")"
      : q.source === "none" ? "not measured: no collector"
      : "not measured yet: send labels to the collector's /feedback";
    $("quality").textContent = "Measured from ground truth (last hour): " + (measured.length ? measured.join(", ") : why) +
      ". Estimated from confidence (last 1,000 predictions, before any label): " +
      (estimates.length ? estimates.join(", ") : "none yet (100 predictions needed)") + ".";
  }

  // ---- data ---------------------------------------------------------------------
  function absorb(o) {
    state.sampleSeconds = o.sample_seconds;
    $("sample-seconds").textContent = String(o.sample_seconds);
    for (const s of o.samples) {
      // Only samples newer than the last one kept: never the same one twice.
      if (s.t_ms > state.since) {
        state.samples.push(s);
        state.since = s.t_ms;
      }
    }
    const oldest = state.since - SPAN_S * 1000;
    while (state.samples.length && state.samples[0].t_ms <= oldest) state.samples.shift();
  }

  async function poll() {
    const generation = state.generation;
    clearTimeout(state.timer);
    let signedIn = true;
    try {
      const response = await fetch(OVERVIEW + "?since=" + state.since, { headers: { Accept: "application/json" } });
      if (generation !== state.generation) return;
      if (response.status === 401 || response.status === 403) {
        const body = await response.json().catch(() => null);
        signedIn = false;
        return signedOut(body && body.error ? body.error.message : "");
      }
      if (!response.ok) {
        $("status").textContent = "The dashboard data could not be read (HTTP " + response.status + "); retrying…";
        return;
      }
      const o = await response.json();
      if (generation !== state.generation) return;
      state.last = o;
      absorb(o);
      showBoard();
      drawRequests(o);
      drawModels(o);
      drawLists(o);
      $("status").textContent = "vigil " + o.version + " · " + (o.ready ? "ready" : "not ready") +
        " · up " + Math.round(o.uptime_seconds) + " s · updated " + timeOf(Date.parse(o.generated_at));
    } catch (e) {
      if (generation === state.generation) $("status").textContent = "vigil is not answering; retrying…";
    } finally {
      // Whatever happened, the next poll comes, unless this one is stale or ended
      // the session.
      if (signedIn && generation === state.generation) schedule();
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, state.sampleSeconds * 1000);
  }

  function showBoard() {
    $("sign-in").hidden = true;
    $("board").hidden = false;
    $("sign-out").hidden = false;
  }

  function signedOut(message) {
    state.generation += 1;
    clearTimeout(state.timer);
    state.timer = null;
    state.since = 0;
    state.samples = [];
    state.last = null;
    destroyCharts();
    $("board").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("status").textContent = "Signed out";
    $("api-key").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const input = $("api-key");
    const key = input.value.trim();
    $("sign-in-error").textContent = "";
    const response = await fetch(SESSION, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ api_key: key }),
    });
    input.value = "";
    if (response.status === 204) {
      $("status").textContent = "Signed in";
      state.generation += 1;
      poll();
      return;
    }
    const body = await response.json().catch(() => null);
    const reason = response.status === 403
      ? "That key is not an admin key."
      : response.status === 401
        ? "That key was not accepted."
        : "Sign-in failed (HTTP " + response.status + ").";
    $("sign-in-error").textContent = reason + (body && body.error ? " " + body.error.message : "");
    input.focus();
  }

  async function signOut() {
    // Stop polling first: an answer already on its way is dropped.
    state.generation += 1;
    clearTimeout(state.timer);
    await fetch(SESSION, { method: "DELETE" }).catch(() => null);
    signedOut("");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("model-pick").addEventListener("change", (e) => {
      state.model = e.target.value;
      if (state.last) drawModels(state.last);
    });
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(resizeCharts, 150);
    });
    start();
  });

  // Signed in already (a session cookie from before)? Then straight to the board.
  async function start() {
    const answer = await fetch(SESSION, { headers: { Accept: "application/json" } })
      .then((r) => r.json())
      .catch(() => null);
    if (answer && answer.signed_in) poll();
    else signedOut("");
  }
})();
