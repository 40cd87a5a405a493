// The trainer's live console. Renders what the controller pushes; every control sends a
// command through the engine's one command path and shows the answer beside it.
//
// Rules kept here:
// - user data (client names, suit names, messages) only ever goes in through textContent;
// - Escape always sends the emergency stop; Space does so only when no control has focus;
// - a lost controller is shown as lost everywhere, and an emergency stop asked for then is
//   kept and resent (reconnecting at once) until the controller confirms it.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token");
const RETRY_MS = 1000;
const FULL_RETRY_MS = 5000;  // a class with every place taken: try again now and then
const CLOSE_FULL = 4429;     // the controller's close code when every place is taken

let ws = null;
let facts = null;          // the `class` message: areas, regions, timeline
let state = null;          // the last `state` message
let online = false;
let watching = false;      // this connection only watches: the class's steering places are taken
let maxSteering = 8;       // how many consoles steer at once (from the `class` message)
let full = null;           // the controller's words when it had no place for this screen
let nextId = 1;
let reconnectTimer = null;
let attempts = 0;
let estopWanted = false;   // an emergency stop not yet confirmed by the controller
let estopTimer = null;
let lastAnnounced = {};
let newestWarning = undefined;  // the newest message seen, so that only news is announced
const pending = new Map();
const dismissed = new Set();

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes (never HTML). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") { node.className = v; }
    else if (k === "text") { node.textContent = v; }
    else if (k.startsWith("on")) { node.addEventListener(k.slice(2), v); }
    else { node.setAttribute(k, v); }
  }
  for (const c of children) {
    if (c === null || c === undefined) { continue; }
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) { node.textContent = text; }
}

// -- the connection ---------------------------------------------------------------------

function wsUrl() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams();
  if (token) { query.set("token", token); }
  // a screen the controller has no place for still gets its STOP carried out
  if (estopWanted) { query.set("estop", "1"); }
  url.search = query.toString();
  return url.href;
}

function connect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
    return;
  }
  attempts += 1;
  const sock = new WebSocket(wsUrl());
  ws = sock;
  sock.onopen = () => {
    attempts = 0;
    online = true;
    if (estopWanted) { sendEstop(); }
    render();
  };
  sock.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "class") {
      facts = msg;
      watching = msg.steering === false;
      maxSteering = msg.max_steering || maxSteering;
      full = null;
      buildCards();
    }
    else if (msg.type === "state") { state = msg; render(); }
    else if (msg.type === "result") { onResult(msg); }
  };
  sock.onclose = (ev) => {
    if (ws !== sock) { return; }
    const refused = ev.code === CLOSE_FULL;
    const was = online && !refused && !full;
    online = false;
    ws = null;
    if (refused) {
      if (full === null) { say("alert", ev.reason); }
      full = ev.reason;
    }
    for (const [id, where] of pending) { showResult(where, false, "not sent: the controller is not answering"); pending.delete(id); }
    render();
    if (was) { say("alert", "Controller lost. The suits stop by themselves. Reconnecting."); }
    reconnectTimer = setTimeout(connect, estopWanted ? 200 : refused ? FULL_RETRY_MS : RETRY_MS);
  };
}

function send(cmd, where) {
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    showResult(where, false, "not sent: the controller is not answering");
    return false;
  }
  const id = String(nextId++);
  pending.set(id, where);
  ws.send(JSON.stringify({ id, ...cmd }));
  return true;
}

function onResult(msg) {
  const where = pending.get(msg.id);
  pending.delete(msg.id);
  if (msg.command === "estop" && msg.ok) {
    estopWanted = false;
    clearInterval(estopTimer);
    estopTimer = null;
  }
  showResult(where, msg.ok, msg.ok ? "done" : msg.message);
  if (!msg.ok) { say("announce", "Not done: " + msg.message); }
  render();
}

/** A refusal shows in words beside the control; a success only flashes it (nothing moves). */
function showResult(where, ok, message) {
  const node = where && $(where);
  if (!node) { return; }
  const host = node.closest(".area, .master, .classbar") || node;
  clearTimeout(node._clear);
  if (ok) {
    node.textContent = "";
    node.classList.remove("bad");
    host.classList.remove("flash");
    void host.offsetWidth;  // restart the animation
    host.classList.add("flash");
    return;
  }
  node.textContent = "✗ " + message;
  node.classList.add("bad");
  node._clear = setTimeout(() => { node.textContent = ""; }, 8000);
}

// -- the emergency stop -------------------------------------------------------------------

function sendEstop() {
  send({ do: "estop" }, "result-class");
}

/** Ask for the emergency stop, and keep asking (reconnecting if need be) until confirmed. */
function estop() {
  estopWanted = true;
  if (online) { sendEstop(); } else { connect(); }
  clearInterval(estopTimer);
  estopTimer = setInterval(() => {
    if (!estopWanted) { clearInterval(estopTimer); estopTimer = null; return; }
    if (online) { sendEstop(); } else { connect(); }
    render();
  }, RETRY_MS);
  render();
}

function isControl(node) {
  return node && node !== document.body && node.matches &&
    node.matches("input, select, textarea, button, a[href], [contenteditable], [role=button], summary");
}

// on the window, in the capture phase: no other handler (a dialog's, a widget's) can swallow it
window.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") {
    ev.preventDefault();
    estop();
  } else if (ev.key === " " && !ev.repeat && !isControl(document.activeElement)) {
    // Space stops only when no control has focus: it never steals typing or a button press
    ev.preventDefault();
    estop();
  }
}, true);

// -- announcements ------------------------------------------------------------------------

/** Announce `text` in a live region: appended, so that news in the same moment is all read. */
function say(where, text) {
  const node = $(where);
  node.append(el("p", { text }));
  while (node.children.length > 3) { node.firstElementChild.remove(); }
}

function announceChanges(s) {
  const now = {};
  now.state = online ? s.state : "offline";
  s.clients.forEach((c, i) => { now["link" + i] = c.link; });
  if (lastAnnounced.state !== undefined) {
    if (now.state !== lastAnnounced.state) {
      if (now.state === "estopped") { say("alert", "Emergency stop. Every suit is at zero."); }
      else if (now.state !== "offline") { say("announce", "Class " + STATE_WORDS[now.state].text + "."); }
    }
    s.clients.forEach((c, i) => {
      const was = lastAnnounced["link" + i];
      if (was !== undefined && was !== c.link && online) {
        say("announce", c.name + "'s suit: " + LINK_WORDS[c.link].text + ".");
      }
    });
  }
  lastAnnounced = now;
}

// -- words ------------------------------------------------------------------------------

const STATE_WORDS = {
  connecting: { icon: "…", text: "Connecting" },
  ready: { icon: "○", text: "Ready" },
  running: { icon: "▶", text: "Running" },
  paused: { icon: "❚❚", text: "Paused" },
  estopped: { icon: "■", text: "Stopped (emergency)" },
  finished: { icon: "✓", text: "Finished" },
  stopped: { icon: "■", text: "Ended" },
  offline: { icon: "✕", text: "Controller lost" },
};
const LINK_WORDS = {
  connected: { icon: "●", text: "Connected" },
  connecting: { icon: "…", text: "Connecting" },
  lost: { icon: "✕", text: "Lost — reconnecting" },
  refused: { icon: "⊘", text: "Not usable — give another suit" },
  closed: { icon: "○", text: "Off" },
  unknown: { icon: "?", text: "Unknown — controller lost" },
};
const LINK_HEALTH_WORDS = {
  good: "Link: good",
  weak: "Link: weak — bring the suit closer to the tablet",
  lost: "Link: lost",
  unknown: "Link: ?",
};
const SEVERITY_WORDS = { stop: "Stop", warning: "Warning", info: "Note" };
const PHASE_WORDS = { warmup: "Warm-up", suit: "Exercise", stretch: "Stretching" };

function fmt(s) {
  s = Math.max(0, Math.round(s));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function unit() {
  return $("unit").value === "%" ? "%" : "mA";
}

/** A level in the chosen unit, without the unit: mA to the half, or % of the device's max. */
function num(v) {
  if (unit() === "%") { return String(Math.round(100 * v / maxMA())); }
  const r = Math.round(v * 2) / 2;
  return r.toFixed(r % 1 === 0 ? 0 : 1);
}

function mA(v) {
  return num(v) + (unit() === "%" ? " %" : " mA");
}

function maxMA() {
  return facts && facts.device_max_mA ? facts.device_max_mA : 120;
}

/** The chosen step, in mA (a step in % is a share of the device's maximum). */
function step() {
  const checked = document.querySelector("input[name=step]:checked");
  const n = checked ? Number(checked.value) : 1;
  return unit() === "%" ? n * maxMA() / 100 : n;
}

// -- building the cards -----------------------------------------------------------------

function buildCards() {
  const main = $("clients");
  main.replaceChildren();
  if (!facts || !state) { return; }
  state.clients.forEach((c, i) => main.append(buildCard(c, i)));
  buildTimeline();
}

function nudge(i, channel, sign, where) {
  const cmd = { do: "set_intensity", client: i + 1, delta_mA: sign * step() };
  if (channel !== null) { cmd.channel = channel; }
  send(cmd, where);
}

function buildCard(c, i) {
  const titleId = "client-" + i + "-name";
  const masterResult = "result-" + i + "-master";
  const card = el("section", { class: "card", id: "client-" + i, "aria-labelledby": titleId, "data-name": c.name },
    el("div", { class: "card-head" },
      el("h2", { id: titleId, class: "client-name", text: c.name }),
      el("p", { class: "link" },
        el("span", { class: "icon", "aria-hidden": "true" }), el("span", { class: "link-text" })),
      el("p", { class: "suit-line" },
        el("span", { class: "suit-name", text: "Suit " + c.suit }), " · ",
        el("span", { class: "battery" })),
      el("details", { class: "link-health" },
        el("summary", { class: "link-verdict" }), el("p", { class: "link-figures" })),
      el("p", { class: "suit-faults" })),
    el("div", { class: "master", role: "group", "aria-label": c.name + ": all areas" },
      el("span", { class: "master-label" }, "All areas",
        el("span", { class: "master-level" })),
      el("button", { type: "button", class: "minus", "aria-label": c.name + ": all areas less",
        onclick: () => nudge(i, null, -1, masterResult) }, "−"),
      el("button", { type: "button", class: "plus", "aria-label": c.name + ": all areas more",
        onclick: () => nudge(i, null, +1, masterResult) }, "+"),
      el("p", { class: "result", id: masterResult, role: "status" })));
  for (const region of facts.regions) {
    const list = el("ul", { class: "areas" });
    const headId = "client-" + i + "-region-" + region.key;
    const group = el("div", { class: "region", role: "group", "aria-labelledby": headId },
      el("h3", { id: headId, text: region.label }), list);
    for (const a of facts.areas.filter((x) => x.region === region.key)) {
      const j = facts.channels.indexOf(a.channel);
      const rid = "result-" + i + "-" + a.channel;
      const who = c.name + ": " + a.label;
      list.append(el("li", { class: "area", "data-channel": a.channel, "data-index": String(j) },
        el("span", { class: "area-label", text: a.label }),
        el("span", { class: "contact" }),
        el("span", { class: "set" }),
        el("span", { class: "bar", "aria-hidden": "true" }, el("span", { class: "fill" })),
        el("span", { class: "now visually-hidden" }),
        el("button", { type: "button", class: "minus", "aria-label": who + " less",
          onclick: () => nudge(i, a.channel, -1, rid) }, "−"),
        el("button", { type: "button", class: "plus", "aria-label": who + " more",
          onclick: () => nudge(i, a.channel, +1, rid) }, "+"),
        el("p", { class: "result", id: rid, role: "status" })));
    }
    card.append(group);
  }
  return card;
}

function buildTimeline() {
  const bar = $("timeline");
  bar.querySelectorAll(".seg").forEach((n) => n.remove());
  if (!facts || !facts.total_s) { return; }
  for (const seg of facts.timeline) {
    const part = el("span", { class: "seg " + seg.phase + (seg.stimulates ? " stim" : "") });
    part.style.left = (100 * seg.start_s / facts.total_s) + "%";
    part.style.width = (100 * (seg.end_s - seg.start_s) / facts.total_s) + "%";
    bar.prepend(part);
  }
}

// -- rendering the state ----------------------------------------------------------------

function render() {
  const s = state;
  const body = document.body;
  const classState = !online ? (s ? "offline" : "connecting") : (s ? s.state : "connecting");
  body.className = "state-" + classState + (estopWanted ? " estop-pending" : "");
  const words = STATE_WORDS[classState] || { icon: "", text: classState };
  const badge = $("state");
  badge.dataset.state = classState;
  setText(badge.querySelector(".icon"), words.icon);
  setText($("state-text"), words.text);
  renderBanner(classState);
  renderRole();
  renderButtons(classState);
  if (!s) { return; }
  if (facts) { setText($("workout"), facts.workout); }
  const phase = s.phase ? (PHASE_WORDS[s.phase] || s.phase) : "";
  setText($("exercise"), s.exercise || phase || (s.state === "ready" ? "Not started" : "—"));
  setText($("cue"), (s.cues || []).join(" · "));
  setText($("next"), s.next ? (PHASE_WORDS[s.next] || s.next) : "the end");
  setText($("countdown"), online ? fmt(s.segment_remaining_s) : "—");
  setText($("left"), online ? fmt(s.remaining_s) : "—");
  const pulse = $("pulse");
  pulse.classList.toggle("on", online && s.contracting);
  setText(pulse, online && s.contracting ? "contract" : "rest");
  if (facts && facts.total_s) { $("cursor").style.left = (100 * s.plan_t / facts.total_s) + "%"; }
  const main = $("clients");
  if (facts && main.children.length !== s.clients.length) { buildCards(); }
  s.clients.forEach((c, i) => renderCard(c, i));
  renderWarnings(s.warnings || []);
  if (online) { announceChanges(s); }
}

function renderBanner(classState) {
  const banner = $("banner");
  let title = "", text = "";
  let kind = "lost";
  if (full !== null && !online) {
    title = "Not shown on this screen";
    text = full + " STOP here still stops every suit.";
  } else if (classState === "offline" || classState === "connecting" && attempts > 1) {
    title = "Controller lost";
    text = "This screen cannot reach the controller; the suits stop by themselves within " +
      "¼ s. Reconnecting" + (attempts > 1 ? " (try " + attempts + ")" : "") + "…";
    if (estopWanted) { text += " STOP is being sent again as soon as it answers."; }
  } else if (classState === "estopped") {
    kind = "stopped";
    title = "STOPPED — emergency";
    text = "Every suit is at zero. When everyone is safe: Reset stop, then Resume.";
  } else if (classState === "paused") {
    kind = "paused";
    title = "Paused";
    text = "Every suit is at zero. Resume to go on: levels start again from zero.";
  } else if (estopWanted) {
    title = "Sending STOP…";
    text = "Waiting for the controller to confirm.";
  }
  banner.hidden = !title;
  banner.className = "banner " + kind;
  setText($("banner-title"), title);
  setText($("banner-text"), text);
}

/** A console that only watches says so from across the room; its STOP still works. */
function renderRole() {
  const shown = online && watching;
  $("role").hidden = !shown;
  setText($("role-title"), shown ? "Watching only — " + maxSteering + " consoles already steer this class" : "");
  setText($("role-text"), shown ? "The buttons here are off; STOP still stops every suit. " +
    "To steer from here, close another console, then reload this page." : "");
  document.body.classList.toggle("watching", shown);
}

function renderButtons(classState) {
  const enabled = {
    start: classState === "ready",
    pause: classState === "running",
    resume: classState === "paused",
    skip: classState === "running" || classState === "paused",
    reset: classState === "estopped",
  };
  document.querySelectorAll(".controls button").forEach((b) => {
    b.disabled = watching || !enabled[b.dataset.do];
  });
  document.querySelector("button[data-do=start]").hidden = classState !== "ready";
  const ended = classState === "finished" || classState === "stopped";
  const canSet = online && !ended && !watching;
  document.querySelectorAll("main button, #class-minus, #class-plus").forEach((b) => {
    b.disabled = !canSet;
  });
}

function renderCard(c, i) {
  const card = $("client-" + i);
  if (!card) { return; }
  const link = online ? c.link : "unknown";
  const lw = LINK_WORDS[link] || { icon: "", text: link };
  card.dataset.link = link;
  card.classList.toggle("dropped", link !== "connected");
  setText(card.querySelector(".link .icon"), lw.icon);
  setText(card.querySelector(".link-text"), lw.text);
  setText(card.querySelector(".battery"),
    !online || c.battery_pct === null ? "Battery ?" : "Battery " + c.battery_pct + " %");
  card.querySelector(".battery").classList.toggle("low", online && c.battery_pct !== null && c.battery_pct < 20);
  renderLinkHealth(card, online ? c.link_health : null);
  const live = online && c.link === "connected";
  setText(card.querySelector(".suit-faults"), live ? (c.fault_words || []).join(" · ") : "");
  const targets = c.target_mA;
  const lo = Math.min(...targets), hi = Math.max(...targets);
  setText(card.querySelector(".master-level"), lo === hi ? mA(hi) : num(lo) + "–" + mA(hi));
  card.querySelectorAll(".area").forEach((row) => {
    const j = Number(row.dataset.index);
    const set = targets[j];
    const delivered = live ? c.suit_levels_mA[j] : 0;
    setText(row.querySelector(".set"), mA(set));
    const fill = row.querySelector(".fill");
    const frac = set > 0 ? Math.min(1, delivered / set) : 0;
    fill.style.width = (100 * frac) + "%";
    setText(row.querySelector(".now"), live ? "now " + mA(delivered) : "nothing delivered");
    const contact = row.querySelector(".contact");
    const noContact = live && !c.contact[j];
    setText(contact, noContact ? "no contact — wet the pad" : "");
    row.classList.toggle("no-contact", noContact);
  });
}

function renderLinkHealth(card, health) {
  // quiet while good (small, muted), loud when weak; the figures when opened
  const verdict = health ? health.verdict : "unknown";
  const box = card.querySelector(".link-health");
  box.dataset.verdict = verdict;
  setText(box.querySelector(".link-verdict"), LINK_HEALTH_WORDS[verdict]);
  setText(box.querySelector(".link-figures"), health ? linkFigures(health) : "Not known now");
}

function linkFigures(h) {
  const parts = [];
  if (h.frames_per_s !== null) { parts.push(Math.round(h.frames_per_s) + " frames a second"); }
  if (h.round_trip_ms !== null) { parts.push("answers in " + Math.round(h.round_trip_ms) + " ms"); }
  if (h.rssi_dbm !== null) { parts.push("signal " + String(h.rssi_dbm).replace("-", "−") + " dBm"); }
  return parts.length ? parts.join(" · ") : "Not measured yet";
}

function renderWarnings(list) {
  const ol = $("warnings");
  const newest = list.length ? list[0] : null;
  if (newestWarning !== undefined && newest && newest.id !== newestWarning &&
      newest.severity !== "stop") {  // a stop is announced as an alert already
    say("announce", newest.text + ". " + newest.action + ".");
  }
  newestWarning = newest ? newest.id : null;
  const shown = list.filter((w) => !dismissed.has(w.id));
  const ids = shown.map((w) => String(w.id)).join(",");
  if (ol.dataset.ids === ids) { return; }
  ol.dataset.ids = ids;
  ol.replaceChildren(...shown.map((w) => {
    const what = w.text;
    return el("li", { class: "warning " + w.severity, "data-kind": w.kind },
      el("p", { class: "what" },
        el("strong", { class: "severity", text: SEVERITY_WORDS[w.severity] + ": " }), what,
        w.count > 1 ? el("span", { class: "times-count", text: " (" + w.count + " times)" }) : null),
      el("p", { class: "todo", text: w.action + " (at " + fmt(w.t) + ")" }),
      el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss: " + what,
        onclick: () => {
          dismissed.add(w.id);
          renderWarnings(state ? state.warnings || [] : list);
          // keep the focus in the list, on the next message or on its heading
          (ol.querySelector(".dismiss") || $("warnings-title")).focus();
        } }, "Dismiss"));
  }));
  setText($("warnings-count"), shown.length ? "(" + shown.length + ")" : "");
  $("no-warnings").hidden = shown.length > 0;
}

// -- wiring -----------------------------------------------------------------------------

$("estop").addEventListener("click", estop);
document.querySelectorAll(".controls button").forEach((b) => {
  b.addEventListener("click", () => send({ do: b.dataset.do }, "result-class"));
});
$("class-minus").addEventListener("click", () =>
  send({ do: "set_intensity", delta_mA: -step() }, "result-class"));
$("class-plus").addEventListener("click", () =>
  send({ do: "set_intensity", delta_mA: step() }, "result-class"));
$("step-form").addEventListener("submit", (ev) => ev.preventDefault());
// the step and the unit are this device's choice, kept across reloads
for (const input of document.querySelectorAll("input[name=step], #unit")) {
  const saved = localStorage.getItem("console." + input.name);
  if (saved !== null && input.type === "radio") { input.checked = input.value === saved; }
  else if (saved !== null) { input.value = saved; }
  input.addEventListener("change", () => {
    localStorage.setItem("console." + input.name, input.value);
    if (input.name === "unit") { render(); }
  });
}
if (!document.querySelector("input[name=step]:checked")) {
  document.querySelector("input[name=step]").checked = true;
}
render();
connect();
