// The trainer's console: renders pushed state, sends every button through the engine's
// one command path and shows the result beside the control.
"use strict";
const params = new URLSearchParams(location.search);
const token = params.get("token");
let ws = null, state = null, nextId = 1;
const pending = new Map();

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" +
    (token ? "?token=" + encodeURIComponent(token) : "");
  ws = new WebSocket(url);
  ws.onopen = () => { document.getElementById("lost").hidden = true; };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "state") { state = msg; render(msg); }
    else if (msg.type === "result") { showResult(msg); }
  };
  ws.onclose = () => {
    document.getElementById("lost").hidden = false;
    document.getElementById("state").textContent = "disconnected";
    setTimeout(connect, 1000);
  };
}

function send(cmd, where) {
  if (!ws || ws.readyState !== WebSocket.OPEN) { return; }
  const id = String(nextId++);
  pending.set(id, where);
  ws.send(JSON.stringify({ id, ...cmd }));
}

function showResult(msg) {
  const where = pending.get(msg.id);
  pending.delete(msg.id);
  const el = where && document.getElementById(where);
  if (!el) { return; }
  // a tick beside the button; the full answer on hover, and in words when refused
  el.textContent = msg.ok ? (where === "result-class" ? "✓ " + msg.message : "✓")
    : "✗ " + msg.message;
  el.title = msg.message || "";
  el.className = "result" + (msg.ok ? "" : " bad");
}

function fmt(s) {
  s = Math.max(0, Math.round(s));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function render(s) {
  const st = document.getElementById("state");
  st.textContent = s.state; st.className = "state " + s.state;
  document.getElementById("workout").textContent = s.workout;
  document.getElementById("phase").textContent = s.phase || "";
  document.getElementById("exercise").textContent = s.exercise || "";
  document.getElementById("cue").textContent = (s.cues || []).join(", ");
  document.getElementById("next").textContent = s.next || "end";
  document.getElementById("countdown").textContent = fmt(s.segment_remaining_s);
  document.getElementById("left").textContent = fmt(s.remaining_s);
  document.getElementById("pulse").className = "pulse" + (s.contracting ? " on" : "");
  const warnings = document.getElementById("warnings");
  warnings.replaceChildren();
  for (const w of (s.warnings || []).slice(-4).reverse()) {
    const li = document.createElement("li");
    li.textContent = fmt(w.t) + " — " + (w.client ? w.client + ": " : "") + w.message;
    warnings.appendChild(li);
  }
  const main = document.getElementById("clients");
  s.clients.forEach((c, i) => {
    let card = document.getElementById("client-" + i);
    if (!card) { card = buildCard(c, i, s.channels); main.appendChild(card); }
    card.classList.toggle("dropped", c.link !== "connected");
    const link = card.querySelector(".link");
    link.textContent = c.link; link.className = "link " + c.link;
    card.querySelector(".battery").textContent =
      c.battery_pct === null ? "battery ?" : "battery " + c.battery_pct + " %";
    s.channels.forEach((ch, j) => {
      const row = card.querySelector('[data-index="' + j + '"]');
      row.querySelector(".out").textContent = c.levels_mA[j].toFixed(1);
      row.querySelector(".set").textContent = c.target_mA[j].toFixed(0);
      // a lost suit's last report is stale: its watchdog has zeroed it by now
      row.querySelector(".suit").textContent =
        c.link === "connected" ? c.suit_levels_mA[j].toFixed(1) : "—";
      const contact = row.querySelector(".contact");
      contact.textContent = c.contact[j] ? "" : "open";
      contact.className = "contact" + (c.contact[j] ? "" : " open");
    });
  });
}

// Names come from outside (client records, suit addresses, layouts): they only ever go
// into the page as text (textContent), never as HTML.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") { node.className = v; } else { node.setAttribute(k, v); }
  }
  for (const child of children) {
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function plusMinus(label, onMinus, onPlus, rid) {
  const minus = el("button", { class: "minus", "aria-label": label + " minus" }, "−");
  const plus = el("button", { class: "plus", "aria-label": label + " plus" }, "+");
  minus.onclick = onMinus; plus.onclick = onPlus;
  return [minus, plus, el("span", { class: "result", id: rid })];
}

function buildCard(c, i, channels) {
  const card = el("section", { class: "card", id: "client-" + i },
    el("h2", {},
      el("span", {}, c.name + " ", el("small", {}, c.suit)),
      el("span", {}, el("span", { class: "link" }), " · ", el("span", { class: "battery" }))));
  channels.forEach((ch, j) => {
    const rid = "result-" + i + "-" + ch;
    const row = el("div", { class: "channel", "data-index": String(j) },
      el("span", {}, ch + " ", el("span", { class: "contact" })),
      el("span", { class: "level" }, el("span", { class: "out" }, "0"), " mA · set ",
        el("span", { class: "set" }, "0"), " · suit ", el("span", { class: "suit" }, "0")),
      ...plusMinus(ch,
        () => send({ do: "set_intensity", client: i + 1, channel: ch, delta_mA: -1 }, rid),
        () => send({ do: "set_intensity", client: i + 1, channel: ch, delta_mA: 1 }, rid),
        rid));
    row.dataset.channel = ch;
    card.appendChild(row);
  });
  const mid = "result-" + i + "-master";
  card.appendChild(el("div", { class: "master" }, "all channels ",
    ...plusMinus("all channels",
      () => send({ do: "set_intensity", client: i + 1, delta_mA: -1 }, mid),
      () => send({ do: "set_intensity", client: i + 1, delta_mA: 1 }, mid),
      mid)));
  return card;
}

function estop() { send({ do: "estop" }, "result-class"); }

document.getElementById("estop").onclick = estop;
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" || ev.key === " ") { ev.preventDefault(); estop(); }
});
document.querySelectorAll(".controls button").forEach((b) => {
  b.onclick = () => send({ do: b.dataset.do }, "result-class");
});
connect();
