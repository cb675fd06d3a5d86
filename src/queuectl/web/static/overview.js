// The overview, live: one EventSource; every value is written with textContent.
(function () {
  "use strict";
  var root = document.getElementById("overview");
  if (!root) return;
  var liveBadge = document.getElementById("live");

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "none";
    seconds = Math.max(0, seconds);
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m" + Math.floor(seconds % 60) + "s";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h" + Math.floor(seconds % 3600 / 60) + "m";
    return Math.floor(seconds / 86400) + "d";
  }

  function cell(row, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function replaceRows(tbody, rows, columns, emptyText) {
    var fresh = document.createDocumentFragment();
    if (!rows.length) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      var td = cell(tr, emptyText);
      td.colSpan = columns;
      fresh.appendChild(tr);
    }
    rows.forEach(function (r) { fresh.appendChild(r); });
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    tbody.appendChild(fresh);
  }

  function workerRow(w) {
    var tr = document.createElement("tr");
    cell(tr, w.host); cell(tr, String(w.pid), "num"); cell(tr, String(w.slots), "num");
    cell(tr, String(w.busy), "num"); cell(tr, ago(w.heartbeat_age_s) + " ago");
    cell(tr, String(w.jobs_done), "num"); cell(tr, w.queues && w.queues.length ? w.queues.join(", ") : "all");
    return tr;
  }

  function jobRow(j) {
    var tr = document.createElement("tr");
    var idCell = cell(tr, "", "mono");
    var a = document.createElement("a");
    a.href = "/jobs/" + encodeURIComponent(j.id);
    a.textContent = j.id;
    idCell.appendChild(a);
    var stateCell = cell(tr, "");
    var badge = document.createElement("span");
    badge.className = "badge s-" + j.state;
    badge.textContent = j.state;
    stateCell.appendChild(badge);
    cell(tr, j.queue); cell(tr, String(j.attempts), "num"); cell(tr, j.created_at);
    cell(tr, j.command, "mono cmd");
    return tr;
  }

  function setField(name, text) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = text;
  }

  function drawChart(points, windowS, success) {
    var canvas = document.getElementById("chart");
    if (!canvas || !canvas.getContext) return;
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 640, height = canvas.clientHeight || 160;
    canvas.width = width * ratio; canvas.height = height * ratio;
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var left = 34, bottom = height - 18, top = 8, right = width - 6;
    var max = 1;
    points.forEach(function (p) { if (p[1] > max) max = p[1]; });
    ctx.strokeStyle = "#dde1e6"; ctx.fillStyle = "#67717d"; ctx.font = "11px system-ui, sans-serif";
    ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, bottom); ctx.lineTo(right, bottom); ctx.stroke();
    ctx.fillText(String(max), 4, top + 8); ctx.fillText("0", 4, bottom);
    ctx.fillText("-60m", left, height - 4); ctx.fillText("now", right - 22, height - 4);
    if (!points.length) return;
    function x(t) { return left + (right - left) * (1 + t / 3600); }
    function y(v) { return bottom - (bottom - top) * v / max; }
    ctx.strokeStyle = "#2f855a"; ctx.lineWidth = 2; ctx.beginPath();
    points.forEach(function (p, i) { if (i) ctx.lineTo(x(p[0]), y(p[1])); else ctx.moveTo(x(p[0]), y(p[1])); });
    ctx.stroke();
    if (success && success.length) {  // success rate per bucket, 0-100 % on the same height
      ctx.strokeStyle = "#b7791f"; ctx.lineWidth = 1.5; ctx.setLineDash([4, 3]); ctx.beginPath();
      success.forEach(function (p, i) {
        var yy = bottom - (bottom - top) * p[1];
        if (i) ctx.lineTo(x(p[0]), yy); else ctx.moveTo(x(p[0]), yy);
      });
      ctx.stroke(); ctx.setLineDash([]);
      ctx.fillStyle = "#b7791f";
      success.forEach(function (p) {
        ctx.beginPath(); ctx.arc(x(p[0]), bottom - (bottom - top) * p[1], 2, 0, 2 * Math.PI); ctx.fill();
      });
      ctx.fillText("success 100 %", right - 84, top + 8);
    }
    ctx.fillStyle = "#2f855a";
    var lastPoint = points[points.length - 1];
    ctx.beginPath(); ctx.arc(x(lastPoint[0]), y(lastPoint[1]), 3, 0, 2 * Math.PI); ctx.fill();
    if (windowS < 3600) {
      ctx.fillStyle = "#67717d";
      ctx.fillText("sampled since the dashboard started (" + ago(windowS) + ")", left + 6, top + 10);
    }
  }

  function apply(data) {
    var st = data.status, fig = data.figures;
    Object.keys(st.counts).forEach(function (state) {
      var el = root.querySelector('[data-count="' + state + '"]');
      if (el) el.textContent = String(st.counts[state]);
    });
    setField("total", String(st.total));
    setField("throughput_last_minute", String(st.throughput_last_minute));
    setField("success_rate", fig.success_rate === null ? "–" : (fig.success_rate * 100).toFixed(1) + " %");
    setField("duration_p95_s", fig.duration_p95_s === null ? "–" : fig.duration_p95_s + " s");
    setField("oldest_pending_age_s", ago(st.oldest_pending_age_s));
    setField("due_waiting", String(st.due_waiting));
    setField("busy_slots", String(st.busy_slots));
    replaceRows(document.getElementById("workers"), st.workers.map(workerRow), 7,
                "No live workers. Start one with queuectl worker start.");
    replaceRows(document.getElementById("latest"), data.latest.map(jobRow), 6, "No jobs yet.");
    drawChart(fig.throughput_per_min, fig.window_s, fig.success_rate_series);
    root.setAttribute("data-updated", String(Date.now()));
  }

  var source = new EventSource("/events/overview");
  source.addEventListener("overview", function (e) {
    liveBadge.textContent = "live"; liveBadge.className = "live on";
    apply(JSON.parse(e.data));
  });
  source.onerror = function () { liveBadge.textContent = "reconnecting…"; liveBadge.className = "live off"; };
  drawChart([], 0);
})();
