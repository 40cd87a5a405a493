// The suits page (managers): which suits this studio may drive. Enroll a suit with the setup
// code printed on it, give it a new key, or release it. Everything goes through the API
// (/api/v1/suit-keys, CSRF on changes); user data only enters the page as text.
// Uses studio.js's helpers (el, show, say, api, problemBox).
"use strict";

function suitsWhen(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }

// Managers-only reads carry the CSRF header too (the API asks it of every manager call).
async function suitsRead(path) {
  const token = csrf || cookie("suitctl_csrf");
  const r = await fetch("/api/v1" + path, {
    headers: token ? { "x-csrf-token": token } : {}, credentials: "same-origin",
  });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) { loginPage(); throw new Error("log in"); }
  return { ok: r.ok, status: r.status, data };
}

async function suitsPage() {
  const r = await suitsRead("/suit-keys");
  if (!r.ok) {
    show("Suits", problemBox(r.status === 403
      ? { title: "Only a studio manager can enroll or release suits" } : r.data));
    return;
  }
  const seen = await api("GET", "/suits");
  const inReach = seen.ok ? seen.data.suits.map((s) => s.address) : [];
  const out = el("div", { id: "suits-out", "aria-live": "polite" });
  const rows = r.data.suits.map((s) => el("tr", {},
    el("td", { text: s.address }),
    el("td", { text: "key " + s.key_id }),
    el("td", { text: suitsWhen(s.enrolled_at) }),
    el("td", { text: suitsWhen(s.rotated_at) }),
    el("td", {},
      el("button", { type: "button", text: "New key", onclick: () => suitsChange(s.address, "rotate", out) }),
      " ",
      el("button", { type: "button", text: "Release", onclick: () => suitsChange(s.address, "forget", out) }))));
  const table = rows.length
    ? el("table", { id: "suits-enrolled" },
      el("thead", {}, el("tr", {}, ...["Suit", "Key", "Enrolled", "New key given", ""].map((t) => el("th", { text: t })))),
      el("tbody", {}, ...rows))
    : el("p", { id: "suits-none", text: "No suit is enrolled yet: a suit that is not enrolled can be driven by anyone who knows its setup code." });
  const enrolled = new Set(r.data.suits.map((s) => s.address));
  const address = el("input", { type: "text", id: "suit-address", list: "suits-in-reach", required: true, autocomplete: "off" });
  const reach = el("datalist", { id: "suits-in-reach" },
    ...inReach.filter((a) => !enrolled.has(a)).map((a) => el("option", { value: a })));
  const code = el("input", { type: "text", id: "suit-setup-code", inputmode: "numeric", pattern: "[0-9]{3}[ -]?[0-9]{3}", required: true, autocomplete: "off" });
  const form = el("form", {
    id: "suit-enroll",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const e = await api("POST", "/suit-keys", { address: address.value.trim(), setup_code: code.value.trim() });
      if (!e.ok) { out.replaceChildren(problemBox(e.data)); return; }
      say("Suit " + e.data.address + " enrolled");
      await suitsPage();
    },
  },
    el("label", {}, "Suit", address), reach,
    el("label", {}, "Setup code (six digits, printed on the suit)", code),
    el("button", { class: "primary", type: "submit", text: "Enroll" }));
  show("Suits",
    el("p", { text: "Only suits enrolled here can be driven by this studio, and only by it. A suit joins once, with the setup code printed on it." }),
    table,
    el("h2", { text: "Enroll a suit" }), form, out,
    el("p", { class: "hint", text: "A suit enrolled in another studio must be released there, or factory reset (its reset button), before it can join this one." }));
}

async function suitsChange(address, what, out) {
  const sure = what === "forget"
    ? "Release suit " + address + "? It can then join any studio; this studio can no longer drive it."
    : "Give suit " + address + " a new key? The old key stops working at once.";
  if (!window.confirm(sure)) return;
  const body = what === "forget" ? {} : undefined;
  const r = await api("POST", "/suit-keys/" + encodeURIComponent(address) + "/" + what, body);
  if (!r.ok) { out.replaceChildren(problemBox(r.data)); return; }
  say(what === "forget" ? r.data.note : "Suit " + address + " has a new key");
  await suitsPage();
}

window.suitsRoute = suitsPage;
