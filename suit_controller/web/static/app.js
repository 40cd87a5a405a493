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
  warnings.innerHTML = "";
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
      const row = card.querySelector('[data-channel="' + ch + '"]');
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

function buildCard(c, i, channels) {
  const card = document.createElement("section");
  card.className = "card"; card.id = "client-" + i;
  card.innerHTML = '<h2><span>' + c.name + ' <small>' + c.suit + '</small></span>' +
    '<span><span class="link"></span> · <span class="battery"></span></span></h2>';
  channels.forEach((ch) => {
    const row = document.createElement("div");
    row.className = "channel"; row.dataset.channel = ch;
    const rid = "result-" + i + "-" + ch;
    row.innerHTML = '<span>' + ch + ' <span class="contact"></span></span>' +
      '<span class="level"><span class="out">0</span> mA · set <span class="set">0</span>' +
      ' · suit <span class="suit">0</span></span>' +
      '<button class="minus" aria-label="' + ch + ' minus">−</button>' +
      '<button class="plus" aria-label="' + ch + ' plus">+</button>' +
      '<span class="result" id="' + rid + '"></span>';
    row.querySelector(".minus").onclick = () =>
      send({ do: "set_intensity", client: i + 1, channel: ch, delta_mA: -1 }, rid);
    row.querySelector(".plus").onclick = () =>
      send({ do: "set_intensity", client: i + 1, channel: ch, delta_mA: 1 }, rid);
    card.appendChild(row);
  });
  const master = document.createElement("div");
  master.className = "master";
  const mid = "result-" + i + "-master";
  master.innerHTML = 'all channels <button class="minus">−</button><button class="plus">+</button>' +
    ' <span class="result" id="' + mid + '"></span>';
  master.querySelector(".minus").onclick = () =>
    send({ do: "set_intensity", client: i + 1, delta_mA: -1 }, mid);
  master.querySelector(".plus").onclick = () =>
    send({ do: "set_intensity", client: i + 1, delta_mA: 1 }, mid);
  card.appendChild(master);
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
