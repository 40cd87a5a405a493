// The studio's pages for a trainer on a tablet: clients, screening, class set-up, start, end,
// summary. Everything goes through the API (/api/v1); user data only ever enters the page as
// text (textContent), never as HTML.
"use strict";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const status = document.getElementById("status");
let csrf = null;
let me = null;
let timer = null;
let onEscape = null;  // the class page's e-stop while it is shown

// -- tiny DOM helpers (text only) --------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick" || k === "onsubmit" || k === "onchange") node[k] = v;
    else if (k === "text") node.textContent = v;
    else if (v === true) node.setAttribute(k, "");
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}
function show(title, ...children) {
  if (timer) { clearInterval(timer); timer = null; }
  onEscape = null;
  main.replaceChildren(el("h1", { text: title }), ...children.filter((c) => c !== null && c !== undefined));
  document.title = title + " · Studio";
}
function say(text) { status.textContent = text; }
function list(items, cls) {
  return el("ul", { class: cls }, ...items.map((t) => el("li", { text: t })));
}
function minutes(s) { return (s / 60).toFixed(1) + " min"; }

// -- the API -----------------------------------------------------------------------------
function cookie(name) {
  const m = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return m ? decodeURIComponent(m.slice(name.length + 1)) : null;
}
async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const token = csrf || cookie("suitctl_csrf");
  if (method !== "GET" && token) headers["x-csrf-token"] = token;
  const r = await fetch("/api/v1" + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && path !== "/login") { loginPage(); throw new Error("log in"); }
  return { ok: r.ok, status: r.status, data };
}
function problemBox(data) {
  const reasons = data.reasons || (data.errors || []).map((e) => e.field + ": " + e.problem);
  return el("div", { class: "refusals", role: "alert" },
    el("p", { text: data.title || "Refused" }),
    reasons.length ? list(reasons) : el("p", { text: data.detail || "" }));
}

// -- login -------------------------------------------------------------------------------
function loginPage(message) {
  nav.hidden = true;
  const name = el("input", { type: "text", id: "login-name", autocomplete: "username", required: true });
  const pw = el("input", { type: "password", id: "login-password", autocomplete: "current-password", required: true });
  const out = el("div");
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const r = await api("POST", "/login", { name: name.value, password: pw.value });
      if (!r.ok) { out.replaceChildren(problemBox(r.data)); return; }
      csrf = r.data.csrf;
      await start();
    },
  },
    el("label", {}, "Name", name), el("label", {}, "Password", pw),
    el("button", { class: "primary", type: "submit", text: "Log in" }), out);
  show("Log in", message ? el("p", { text: message }) : null, form);
}

// -- clients -----------------------------------------------------------------------------
async function clientsPage() {
  const r = await api("GET", "/clients");
  const rows = r.data.clients.map((c) => el("div", { class: "card" },
    el("a", { href: "#/client/" + c.id, text: c.name }),
    c.today.may_train
      ? el("p", { class: "ok", text: "May train today" + (c.today.first_session ? " (first session)" : "") })
      : el("div", {}, el("p", { class: "no", text: "Not today:" }), list(c.today.why_not))));
  const name = el("input", { type: "text", id: "new-client-name", required: true });
  const member = el("input", { type: "text", id: "new-client-member" });
  const out = el("div");
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { name: name.value };
      if (member.value.trim()) body.member_id = member.value.trim();
      const a = await api("POST", "/clients", body);
      if (!a.ok) { out.replaceChildren(problemBox(a.data)); return; }
      say(a.data.name + " added");
      location.hash = "#/client/" + a.data.id;
    },
  }, el("label", {}, "Name", name), el("label", {}, "Member number (optional)", member),
    el("button", { class: "primary", type: "submit", text: "Add client" }), out);
  show("Clients", ...(rows.length ? rows : [el("p", { text: "No clients yet." })]),
    el("h2", { text: "Add a client" }), form);
}

async function clientPage(id) {
  const [r, q] = await Promise.all([api("GET", "/clients/" + id), api("GET", "/screening-questions")]);
  if (!r.ok) { show("Client", problemBox(r.data)); return; }
  const c = r.data;
  const today = c.today.may_train
    ? el("p", { class: "ok", text: "May train today" })
    : el("div", {}, el("p", { class: "no", text: "Not today:" }), list(c.today.why_not));
  const guidance = c.today.guidance.length ? el("div", { class: "guidance" }, list(c.today.guidance)) : null;
  const screening = c.screening
    ? el("p", { text: "Screened " + c.screening.taken_at.slice(0, 10) + " by " + c.screening.taken_by +
        (c.screening.yes.length ? "; answered yes to: " + c.screening.yes.map((y) => y.question).join(", ") : "; no contraindications") })
    : el("p", { class: "no", text: "Not screened yet." });
  // the screening form: one question per line, a clearance box for the relative ones
  const boxes = q.data.questions.map((x) => {
    const yes = el("input", { type: "checkbox", id: "yes-" + x.key, name: "yes", value: x.key });
    const cleared = x.absolute ? null
      : el("input", { type: "checkbox", id: "clear-" + x.key, name: "clear", value: x.key });
    return el("div", { class: "card" },
      el("label", { class: "check", for: "yes-" + x.key }, yes, x.question),
      cleared ? el("label", { class: "check", for: "clear-" + x.key }, cleared,
        "A doctor has cleared EMS training for this") : null);
  });
  const out = el("div");
  const form = el("form", {
    id: "screening",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const yes = [...form.querySelectorAll("input[name=yes]:checked")].map((i) => i.value);
      const clearances = [...form.querySelectorAll("input[name=clear]:checked")].map((i) => i.value);
      const s = await api("POST", "/clients/" + id + "/screenings", { yes, clearances });
      if (!s.ok) { out.replaceChildren(problemBox(s.data)); return; }
      say("Screening saved");
      await clientPage(id);
    },
  }, ...boxes, el("button", { class: "primary", type: "submit", text: "Save screening" }), out);
  const history = c.sessions.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ...["Date", "Workout", "How it ended", "Stimulated", "Peak"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", { id: "history" }, ...c.sessions.map((s) => el("tr", {},
        el("td", { text: s.started_at.slice(0, 16).replace("T", " ") }),
        el("td", { text: s.workout_title + (s.simulated ? " (simulated)" : "") }),
        el("td", { text: s.state_words }),
        el("td", { text: s.minutes_stimulated + " min" }),
        el("td", { text: s.peak_mA + " mA" })))))
    : el("p", { text: "No sessions yet." });
  const levels = c.last_intensities
    ? el("ul", {}, ...c.last_intensities.areas.map((a) => el("li", { text: a.label + ": " + a.mA + " mA" })))
    : el("p", { text: "None yet." });
  show(c.name, today, guidance, el("h2", { text: "Screening" }), screening,
    el("details", { open: !c.screening }, el("summary", { text: "Screen " + c.name }), form),
    el("h2", { text: "History" }), history,
    el("h2", { text: "Last intensities per body area" }), levels);
}

// -- class set-up --------------------------------------------------------------------------
async function newClassPage() {
  const [w, c, s] = await Promise.all([api("GET", "/workouts"), api("GET", "/clients"), api("GET", "/suits")]);
  const workout = el("select", { id: "workout" }, ...w.data.workouts.map((x) => el("option", { value: x.name, text: x.title })));
  const preview = el("div");
  function drawPreview() {
    const x = w.data.workouts.find((y) => y.name === workout.value);
    const bar = el("div", { class: "timeline", role: "img", "aria-label": "timeline" },
      ...x.timeline.map((seg) => { const span = el("span", { class: seg.kind, title: seg.name });
        span.style.width = (100 * (seg.end_s - seg.start_s) / x.total_s) + "%"; return span; }));
    preview.replaceChildren(bar, el("p", { text: minutes(x.total_s) + ": " +
      x.timeline.filter((t) => t.kind === "suit").map((t) => t.name).join(", ") }));
  }
  workout.onchange = drawPreview;
  drawPreview();
  const room = el("input", { type: "text", id: "room", value: "Room 1" });
  const trainer = el("input", { type: "text", id: "trainer", value: me.name });
  // suits: tap a client's "Choose a suit", then tap a suit in the list (a suit taken by
  // another client swaps with them); every client starts with a free suit of their own
  const free = s.data.suits.filter((x) => !x.in_use);
  const suitWords = (y) => y.address + " · battery " + y.battery_pct + " % · signal " + y.rssi_dbm + " dBm";
  const assigned = new Map();  // client id -> suit address
  let choosing = null;  // the row whose suit is being chosen
  const rows = c.data.clients.map((x, i) => {
    const pick = el("input", { type: "checkbox", id: "pick-" + x.id, value: x.id });
    if (free.length && i < free.length) assigned.set(x.id, free[i].address);
    const suit = el("span", { id: "suit-" + x.id, class: "suit-of" });
    const choose = el("button", { type: "button", id: "choose-" + x.id, class: "choose",
      "aria-pressed": "false", "aria-describedby": "suit-" + x.id, text: "Choose a suit for " + x.name });
    const ate = el("input", { type: "checkbox", id: "ate-" + x.id });
    const unwell = el("input", { type: "checkbox", id: "unwell-" + x.id });
    const row = { x, pick, suit, choose, ate, unwell, node: el("div", { class: "card" },
      el("label", { class: "check", for: "pick-" + x.id }, pick, x.name),
      x.today.may_train ? null : el("p", { class: "no", text: x.today.why_not.join("; ") }),
      el("p", {}, "Suit: ", suit), choose,
      el("label", { class: "check", for: "ate-" + x.id }, ate, "Ate in the last 1.5 hours"),
      el("label", { class: "check", for: "unwell-" + x.id }, unwell, "Feels unwell today")) };
    choose.onclick = () => {
      choosing = choosing === row ? null : row;
      drawSuits();
      say(choosing ? "Now tap a suit for " + x.name : "No suit being chosen");
      if (choosing) {  // the suits are below the clients: bring them to the trainer's hand
        const first = suitList.querySelector("button");
        if (first) { first.scrollIntoView({ block: "center" }); first.focus({ preventScroll: true }); }
      }
    };
    return row;
  });
  const suitList = el("ul", { class: "suits", id: "suits", "aria-label": "Suits in reach" });
  function drawSuits() {
    for (const r of rows) {
      const a = assigned.get(r.x.id);
      r.suit.textContent = a ? a : "none yet";
      r.choose.setAttribute("aria-pressed", String(choosing === r));
      r.node.classList.toggle("choosing", choosing === r);
    }
    suitList.replaceChildren(...free.map((y) => {
      const owner = rows.find((r) => assigned.get(r.x.id) === y.address);
      return el("li", {}, el("button", { type: "button", class: "suit", "data-address": y.address,
        text: suitWords(y) + (owner ? " · " + owner.x.name : " · free"),
        onclick: () => {
          if (!choosing) { say("Tap a client's “Choose a suit” first"); return; }
          const mine = assigned.get(choosing.x.id);
          if (owner && owner !== choosing) {  // swap: the other client takes this client's suit
            if (mine) assigned.set(owner.x.id, mine); else assigned.delete(owner.x.id);
          }
          assigned.set(choosing.x.id, y.address);
          say(choosing.x.name + " wears " + y.address);
          const back = choosing.choose;
          choosing = null;
          drawSuits();
          back.scrollIntoView({ block: "center" });
          back.focus({ preventScroll: true });
        } }));
    }));
  }
  drawSuits();
  const out = el("div");
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const picked = rows.filter((r) => r.pick.checked);
      const bare = picked.filter((r) => !assigned.get(r.x.id));
      if (bare.length) {
        out.replaceChildren(problemBox({ title: "A suit is missing", reasons: bare.map((r) =>
          r.x.name + " has no suit yet: tap “Choose a suit for " + r.x.name + "”, then a suit") }));
        return;
      }
      const body = { room: room.value, workout: workout.value, trainers: [trainer.value],
        clients: picked.map((r) => ({ client: r.x.id, suit: assigned.get(r.x.id) || "",
          ate_recently: r.ate.checked, unwell: r.unwell.checked })) };
      const a = await api("POST", "/classes", body);
      if (!a.ok) { out.replaceChildren(problemBox(a.data)); say("The class cannot start"); return; }
      location.hash = "#/class/" + a.data.id;
    },
  }, el("label", {}, "Workout", workout), preview, el("label", {}, "Room", room),
    el("label", {}, "Supervising trainer", trainer), el("h2", { text: "Clients and suits" }),
    ...rows.map((r) => r.node), el("h2", { text: "Suits in reach" }),
    free.length ? suitList : el("p", { class: "no", text: "No free suit in reach: switch the suits on, then reload." }),
    el("button", { class: "primary", type: "submit", text: "Check in" }), out);
  show("New class", form);
}

// -- a class: start, console, end, summary ----------------------------------------------------
async function classPage(id) {
  const r = await api("GET", "/classes/" + id);
  if (r.status === 404) { await summaryPage(id); return; }  // an older class: from the records
  if (!r.ok) { show("Class", problemBox(r.data)); return; }
  const k = r.data;
  if (k.ended) { await summaryPage(id); return; }
  const state = el("p", { id: "class-state", text: k.state_words });
  const out = el("div", { "aria-live": "polite" });
  const startButton = el("button", { class: "primary", id: "start", text: "Start the class",
    disabled: k.state !== "ready", onclick: async () => {
      const a = await api("POST", "/classes/" + id + "/start");
      out.replaceChildren(a.ok ? el("p", { text: "Started" }) : problemBox(a.data));
      await refresh();
    } });
  const endButton = el("button", { class: "danger", id: "end", text: "End the class",
    onclick: async () => {
      endButton.disabled = true;
      const a = await api("POST", "/classes/" + id + "/end");
      if (!a.ok) { out.replaceChildren(problemBox(a.data)); endButton.disabled = false; return; }
      await summaryPage(id);
    } });
  // the class's e-stop, on this page too (button, or Escape anywhere on it): it needs no CSRF
  // token, and it is sent again every second until the controller answers
  const stopNote = el("p", { id: "estop-note", role: "alert" });
  let stopping = false;
  async function estop() {
    if (stopping) return;
    stopping = true;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const a = await api("POST", "/classes/" + id + "/commands", { do: "estop" });
        stopNote.textContent = a.ok
          ? "Emergency stop: every suit is at zero. Reset and resume on the live console."
          : "Emergency stop refused: " + (a.data.detail || a.status) + ". The suits stop by themselves when the class ends.";
        break;
      } catch (e) {
        if (String(e.message) === "log in") break;
        stopNote.textContent = "Cannot reach the controller (try " + attempt + "): the e-stop is being sent again; " +
          "the suits stop by themselves within ¼ s without it.";
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    stopping = false;
    await refresh();
  }
  const estopButton = el("button", { class: "danger estop", id: "class-estop", type: "button",
    "aria-keyshortcuts": "Escape", text: "STOP all suits (Escape)", onclick: estop });
  const who = el("ul", {}, ...k.clients.map((c) => el("li", { text: c.name + " in " + c.suit })));
  const guidance = k.guidance.length ? el("div", { class: "guidance" }, list(k.guidance)) : null;
  async function refresh() {
    const now = await api("GET", "/classes/" + id);
    if (!now.ok) return;
    state.textContent = now.data.state_words + (now.data.snapshot.exercise ? " · " + now.data.snapshot.exercise : "");
    startButton.disabled = now.data.state !== "ready";
    if (now.data.ended) await summaryPage(id);
  }
  show(k.workout_title + " · " + k.room, state, estopButton, stopNote, who, guidance,
    el("div", { class: "row" }, startButton,
      el("a", { class: "button", id: "console-link", href: k.console_url, target: "_blank", text: "Open the live console" }),
      endButton), out);
  onEscape = estop;  // after show(), which forgets the previous page's
  timer = setInterval(refresh, 1500);
}

async function summaryPage(id) {
  const r = await api("GET", "/classes/" + id + "/summary");
  if (!r.ok) { show("Summary", problemBox(r.data)); return; }
  const s = r.data;
  const cards = s.clients.map((c) => el("div", { class: "card summary" },
    el("h2", {}, el("a", { href: "#/client/" + c.client_id, text: c.client_name })),
    el("p", { text: c.minutes_stimulated + " min stimulated · suit " + c.suit }),
    el("p", { text: "Peak per body area:" }),
    el("ul", {}, ...c.peak_per_area.map((p) => el("li", { text: p.label + ": " + p.peak_mA + " mA" }))),
    c.asked_for_less.length ? el("div", {}, el("p", { text: "Asked for less:" }), list(c.asked_for_less)) : null,
    el("p", { text: "Next time:" }), list(c.next_time)));
  const fault = s.status === "interrupted"
    ? el("div", { class: "refusals", role: "alert" }, el("p", {
      text: "The class stopped by itself (a fault in the controller or a suit): every suit was told to stop. " +
        "Check the clients, then set up a new class if they may go on." }))
    : null;
  show("Summary · " + s.workout_title, el("p", { id: "summary-state", text: s.state_words + " after " + s.minutes + " min" }),
    fault, ...cards, el("p", {}, el("a", { href: s.report_url, text: "Full report (JSON)" })));
}

// -- routing ---------------------------------------------------------------------------------
async function route() {
  const h = location.hash || "#/clients";
  main.classList.remove("wide");
  try {
    let m;
    if (h.startsWith("#/workouts")) await window.designerRoute(h);
    else if (h === "#/suits") await window.suitsRoute();
    else if ((m = h.match(/^#\/client\/([\w-]+)$/))) await clientPage(m[1]);
    else if (h === "#/class/new") await newClassPage();
    else if ((m = h.match(/^#\/class\/([\w-]+)$/))) await classPage(m[1]);
    else await clientsPage();
    main.focus();
  } catch (e) { if (String(e.message) !== "log in") show("Something went wrong", el("p", { text: String(e) })); }
}

async function start() {
  const r = await fetch("/api/v1/me", { credentials: "same-origin" });
  if (r.status !== 200) {
    loginPage(location.search.includes("link=spent") ? "That login link was already used." : "");
    return;
  }
  me = await r.json();
  csrf = me.csrf;
  nav.hidden = false;
  if (location.pathname === "/login") history.replaceState(null, "", "/" + location.hash);
  await route();
}

document.getElementById("logout").onclick = async () => {
  await api("POST", "/logout");
  csrf = null;
  loginPage("Logged out.");
};
// Escape stops the class shown, whatever has the focus (a form field keeps every other key)
window.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && onEscape) { ev.preventDefault(); onEscape(); }
}, true);
window.addEventListener("hashchange", route);
start();
