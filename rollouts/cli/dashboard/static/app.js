// The dashboard page: a list of rollouts per namespace, and a page per rollout. It fetches JSON views
// from the plugin, fetches again whenever the server-sent event stream says the watches saw a change,
// and sends the rollout verbs as POST requests.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === "") continue;
    node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child))
                                                                            : child);
  }
  return node;
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return parts.length === 2 ? {namespace: parts[0], name: parts[1]} : null;
}

function showErrors(errors) {
  const box = document.getElementById("errors");
  box.replaceChildren(...(errors || []).map((e) => el("p", {}, `Watch: ${e} (retrying)`)));
}

function status(value, icon, id) {
  return el("span", id ? {id, class: `status-${value}`} : {class: `status-${value}`}, `${icon} ${value}`);
}

// --------------------------------------------------------------------------- the list

function renderList(data) {
  const main = document.getElementById("main");
  if (data.namespaces.length === 0) {
    main.replaceChildren(el("p", {id: "empty"}, "No rollouts."));
    return;
  }
  main.replaceChildren(...data.namespaces.map((group) => el("section", {class: "namespace",
                                                                         "data-namespace": group.namespace},
    el("h2", {}, `Namespace ${group.namespace}`),
    el("table", {},
      el("tr", {}, ...["Name", "Strategy", "Status", "Step", "Set weight", "Actual weight", "Ready", "Message"]
        .map((h) => el("th", {}, h))),
      ...group.rollouts.map((ro) => el("tr", {"data-rollout": ro.name},
        el("td", {}, el("a", {href: `#/${encodeURIComponent(ro.namespace)}/${encodeURIComponent(ro.name)}`}, ro.name)),
        el("td", {}, ro.strategy),
        el("td", {class: "status"}, status(ro.status, ro.icon)),
        el("td", {class: "step"}, ro.step || "-"),
        el("td", {}, ro.setWeight || "-"),
        el("td", {}, ro.actualWeight || "-"),
        el("td", {}, `${ro.ready}/${ro.desired}`),
        el("td", {class: "muted"}, ro.message)))))));
}

// --------------------------------------------------------------------------- a rollout

const VERBS = [
  ["promote", "Promote"], ["promote-full", "Promote full"], ["abort", "Abort"], ["retry", "Retry"],
  ["restart", "Restart"], ["undo", "Undo"],
];

async function act(where, verb) {
  const result = document.getElementById("action-result");
  result.className = "";
  result.textContent = `${verb}…`;
  const response = await fetch(`/api/rollouts/${encodeURIComponent(where.namespace)}/` +
                               `${encodeURIComponent(where.name)}/${verb}`,
                               {method: "POST", headers: {"X-Pyrollouts-Dashboard": "1"}});
  const body = await response.json();
  result.className = response.ok ? "ok" : "error";
  result.textContent = response.ok ? body.message : `Error: ${body.error}`;
}

function facts(ro) {
  const rows = [
    ["Status", status(ro.status, ro.icon, "rollout-status")],
    ["Message", el("span", {id: "rollout-message"}, ro.message || "-")],
    ["Strategy", ro.strategy],
    ["Step", el("span", {id: "rollout-step"}, ro.step || "-")],
    ["Set weight", el("span", {id: "rollout-set-weight"}, ro.setWeight || "-")],
    ["Actual weight", ro.actualWeight || "-"],
    ["Images", ro.images.map((im) => el("div", {}, im.image, ...im.tags.map((t) => el("span", {class: "tag"}, t))))],
    ["Replicas", `desired ${ro.desired}, current ${ro.current}, updated ${ro.updated}, ready ${ro.ready}, ` +
                 `available ${ro.available}`],
  ];
  return el("dl", {class: "facts"}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function stepsList(steps) {
  if (steps.length === 0) return el("p", {class: "muted"}, "No canary steps.");
  return el("ol", {id: "steps", start: 0},
    ...steps.map((s) => el("li", {class: `step ${s.state}`, "data-index": s.index}, s.text)));
}

function routersTable(routers) {
  if (routers.length === 0) return el("p", {class: "muted"}, "No traffic routers.");
  return el("table", {id: "routers"},
    el("tr", {}, el("th", {}, "Router"), el("th", {}, "Set weight"), el("th", {}, "Actual weight"),
       el("th", {}, "Message")),
    ...routers.map((r) => el("tr", {}, el("td", {}, r.name), el("td", {}, r.set_weight),
                             el("td", {}, r.actual_weight), el("td", {}, r.message))));
}

function replicaSet(rs) {
  const tags = ["stable", "canary", "active", "preview", "ping", "pong"].filter((t) => rs[t]);
  return el("div", {class: "replicaset", "data-replicaset": rs.name},
    el("div", {}, `⧉ ${rs.name} `, status(rs.status, rs.icon), ` ${rs.available}/${rs.replicas} available `,
       ...tags.map((t) => el("span", {class: "tag"}, t)), el("span", {class: "muted"}, ` ${rs.images.join(", ")}`)),
    el("div", {class: "pods"}, ...rs.pods.map((p) => el("div", {class: "pod"},
      `□ ${p.name} `, status(p.status, p.icon), ` ready ${p.ready}, restarts ${p.restarts}`))));
}

// A judge score: its value against the thresholds, final or not, and one row per metric.
function scoreVerdict(judge) {
  const s = judge.score;
  const thresholds = [s.pass_threshold && `pass ${s.pass_threshold}`,
                      s.marginal_threshold && `marginal ${s.marginal_threshold}`].filter(Boolean).join(", ");
  return el("div", {class: "verdict score"},
    el("div", {}, el("b", {}, judge.decision), " — score ", el("span", {class: "score-value"}, s.score || "none"),
       thresholds ? ` (${thresholds})` : "", el("span", {class: "score-final"}, s.final ? ", final" : ", not final")),
    s.outcome ? el("div", {class: "score-outcome"}, s.outcome) : null,
    el("div", {class: "muted"}, judge.reason),
    s.groups ? el("div", {class: "muted"}, s.groups) : null,
    el("table", {class: "score-metrics"},
      el("tr", {}, ...["Group", "Metric", "Decision", "Estimate", "Interval", "Reason"].map((h) => el("th", {}, h))),
      ...s.metrics.map((m) => el("tr", {"data-score-metric": m.name},
        el("td", {class: "groups"}, m.groups.join(", ")),
        el("td", {class: "name"}, m.critical ? `${m.name} (critical)` : m.name),
        el("td", {class: "decision"}, m.decision), el("td", {class: "estimate"}, m.estimate),
        el("td", {class: "interval"}, m.interval), el("td", {class: "reason muted"}, m.needed || m.reason)))));
}

function verdict(judge) {
  if (!judge) return null;
  if (judge.score) return scoreVerdict(judge);
  return el("div", {class: "verdict"},
    el("div", {}, el("b", {}, judge.decision), ` — ${judge.reason}`),
    el("div", {class: "muted"}, [judge.quantity && `${judge.quantity}: ${judge.estimate} ${judge.interval}`,
                                 judge.evidence, judge.samples].filter(Boolean).join(" · ")));
}

function analysisRun(run) {
  return el("div", {class: "card analysisrun", "data-analysisrun": run.name},
    el("h3", {}, `AnalysisRun ${run.name} `, status(run.status, run.icon)),
    run.message ? el("div", {class: "muted"}, run.message) : null,
    ...run.metrics.map((m) => el("div", {class: "metric", "data-metric": m.name},
      el("div", {}, el("b", {}, m.name), " ", status(m.status, m.icon),
         ` ${m.measured} measured: ${m.successful} successful, ${m.failed} failed, ${m.inconclusive} inconclusive, ` +
         `${m.error} error${m.dry_run ? " (dry run)" : ""}`),
      m.message ? el("div", {class: "muted"}, m.message) : null,
      el("div", {class: "chart"}, metricChart(m)),
      verdict(m.judge))));
}

function renderRollout(where, data) {
  const ro = data.rollout;
  const main = document.getElementById("main");
  main.replaceChildren(
    el("h1", {id: "rollout-name"}, `${ro.namespace} / ${ro.name}`),
    el("div", {id: "actions"},
       ...VERBS.map(([verb, label]) => el("button", {"data-action": verb, onclick: () => act(where, verb)}, label)),
       el("span", {id: "action-result"})),
    el("div", {class: "card"}, facts(ro)),
    el("h2", {}, "Steps"), stepsList(ro.steps),
    el("h2", {}, "Traffic"), routersTable(ro.routers),
    el("h2", {}, "Revisions"),
    ...ro.revisions.map((rev) => el("div", {class: "card revision", "data-revision": rev.revision},
      el("h3", {}, `Revision ${rev.revision}`),
      ...rev.replicasets.map(replicaSet),
      ...rev.analysisruns.map(analysisRun))));
}

// --------------------------------------------------------------------------- fetching

let lastResult = null;
let requested = 0, drawn = 0;  // fetches may answer out of order: never draw one older than the last drawn

async function refresh() {
  const mine = ++requested;
  const where = route();
  const url = where ? `/api/rollouts/${encodeURIComponent(where.namespace)}/${encodeURIComponent(where.name)}`
                    : "/api/rollouts";
  const response = await fetch(url);
  const data = await response.json();
  if (mine < drawn || JSON.stringify(route()) !== JSON.stringify(where)) return;  // stale
  drawn = mine;
  const keep = document.getElementById("action-result");
  lastResult = keep ? {className: keep.className, text: keep.textContent} : lastResult;
  if (!response.ok) {
    document.getElementById("main").replaceChildren(el("p", {id: "not-found"}, data.error),
                                                    el("a", {href: "#/"}, "All rollouts"));
  } else if (where) {
    renderRollout(where, data);
    const result = document.getElementById("action-result");
    if (lastResult) { result.className = lastResult.className; result.textContent = lastResult.text; }
  } else {
    renderList(data);
  }
  showErrors(data.errors);
}

window.addEventListener("hashchange", () => { lastResult = null; refresh(); });

const live = document.getElementById("live");
const events = new EventSource("/api/events");
events.addEventListener("change", () => { live.textContent = "live"; refresh(); });
events.addEventListener("error", () => { live.textContent = "reconnecting…"; });
refresh();
