// A job's output, followed live while it runs (the events of `logs -f`).
(function () {
  "use strict";
  var out = document.getElementById("output");
  if (!out || out.getAttribute("data-live") !== "yes") return;
  var status = document.getElementById("follow-status");
  var stateBadge = document.getElementById("job-state");
  var source = new EventSource("/events/jobs/" + encodeURIComponent(out.getAttribute("data-job")));

  function append(text) {
    var atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.appendChild(document.createTextNode(text));
    if (atEnd) out.scrollTop = out.scrollHeight;
  }
  // a reconnect starts the follow again from the run's first byte
  source.onopen = function () { while (out.firstChild) out.removeChild(out.firstChild); };
  function note(text) { append("\n[" + text + "]\n"); }

  source.addEventListener("output", function (e) {
    status.textContent = "following…"; status.className = "live on";
    stateBadge.textContent = "processing"; stateBadge.className = "badge s-processing";
    append(JSON.parse(e.data).text);
  });
  source.addEventListener("skipped", function (e) { note(JSON.parse(e.data).bytes + " bytes skipped"); });
  source.addEventListener("run", function (e) { note("attempt " + JSON.parse(e.data).attempt); });
  source.addEventListener("worker_gone", function () { note("the worker running this job has exited"); });
  source.addEventListener("end", function (e) {
    var job = JSON.parse(e.data);
    source.close();
    stateBadge.textContent = job.state; stateBadge.className = "badge s-" + job.state;
    status.textContent = "ended (" + job.state + ")"; status.className = "live";
    out.setAttribute("data-ended", job.state);
  });
  source.onerror = function () {
    if (out.hasAttribute("data-ended")) return;
    status.textContent = "reconnecting…"; status.className = "live off";
  };
})();
