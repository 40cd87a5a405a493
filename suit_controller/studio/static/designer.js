// The workout designer: the library, the YAML editor checked as the trainer types (every problem
// at its line), the timeline against the 20–25 minute rule, a body map, and a try-out on
// simulated bodies whose report speaks first in words. Uses studio.js's helpers (el, show, api).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, String(v));
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

const NEW_WORKOUT = `# A new workout: warm-up without the suit, 20–25 min of suit block, stretching.
name: My workout
programs:
  strength:
    frequency_hz: 85
    pulse_width_us: 350
    impulse_s: 4
    pause_s: 4
phases:
  - kind: warmup
    duration: 5m
  - kind: suit
    exercises:
      - name: Squat
        duration: 10m
        program: strength
        channels: {quads: 0.8, glutes: 0.7, hamstrings: 0.5}
      - name: Row
        duration: 10m
        program: strength
        channels: {upper_back: 0.7, lats: 0.6, arms: 0.5}
  - kind: stretch
    duration: 5m
`;

// Where each area sits on the body map (front or back), as [side, x, y, w, h].
const MAP = {
  chest: [["front", 38, 48, 24, 14]], chest_left: [["front", 50, 48, 12, 14]],
  chest_right: [["front", 38, 48, 12, 14]], abs: [["front", 42, 64, 16, 24]],
  obliques: [["front", 35, 66, 6, 18], ["front", 59, 66, 6, 18]],
  shoulders: [["front", 26, 42, 10, 10], ["front", 64, 42, 10, 10], ["back", 26, 42, 10, 10], ["back", 64, 42, 10, 10]],
  arms: [["front", 22, 54, 8, 30], ["front", 70, 54, 8, 30]], biceps: [["front", 22, 54, 8, 16], ["front", 70, 54, 8, 16]],
  triceps: [["back", 22, 54, 8, 16], ["back", 70, 54, 8, 16]],
  quads: [["front", 36, 98, 12, 34], ["front", 52, 98, 12, 34]],
  adductors: [["front", 46, 98, 8, 24]],
  upper_back: [["back", 38, 44, 24, 16]], lats: [["back", 34, 60, 8, 18], ["back", 58, 60, 8, 18]],
  lower_back: [["back", 42, 76, 16, 12]], glutes: [["back", 38, 88, 24, 12]],
  hamstrings: [["back", 36, 102, 12, 30], ["back", 52, 102, 12, 30]],
  calves: [["back", 36, 138, 12, 24], ["back", 52, 138, 12, 24]],
};

function bodyMap(areas, title, onTap) {
  // areas: [{channel, label, weight}] — drawn front and back; strength as fill and in words.
  // With onTap, every area is drawn and tapping one sets its weight (0 → 0.3 → 0.6 → 0.9 → 0).
  const weight = {};
  for (const a of areas) weight[a.channel] = Math.max(weight[a.channel] || 0, a.weight);
  const figure = (side) => {
    const g = svg("svg", { viewBox: "0 0 100 170", width: 150, height: 255, role: "img",
      "aria-label": title + " (" + side + ")" });
    g.append(svg("title", { text: title + ", " + side }));
    g.append(svg("circle", { cx: 50, cy: 20, r: 12, class: "skin" }));
    g.append(svg("rect", { x: 34, y: 38, width: 32, height: 60, rx: 8, class: "skin" }));
    for (const x of [20, 68]) g.append(svg("rect", { x, y: 40, width: 12, height: 50, rx: 5, class: "skin" }));
    for (const x of [35, 51]) g.append(svg("rect", { x, y: 96, width: 14, height: 70, rx: 5, class: "skin" }));
    for (const [ch, places] of Object.entries(MAP)) {
      const w = weight[ch] || 0;
      if (!w && (!onTap || ch === "chest" || ch === "arms")) continue;
      for (const [s, x, y, wd, ht] of places) {
        if (s !== side) continue;
        const r = svg("rect", { x, y, width: wd, height: ht, rx: 3, class: w ? "area" : "area off",
          "fill-opacity": w ? (0.25 + 0.75 * w).toFixed(2) : 0, "data-channel": ch });
        r.append(svg("title", { text: ch + ": weight " + w }));
        if (onTap) {
          r.setAttribute("tabindex", "0"); r.setAttribute("role", "button");
          r.setAttribute("aria-label", ch + " weight " + w + ": tap to change");
          r.addEventListener("click", () => onTap(ch, w));
          r.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onTap(ch, w); } });
        }
        g.append(r);
      }
    }
    g.append(svg("text", { x: 50, y: 168, "text-anchor": "middle", class: "map-side", text: side }));
    return g;
  };
  const words = areas.length
    ? el("ul", { class: "weights" }, ...areas.map((a) => el("li", {
      text: a.label + ": " + (a.weight >= 0.75 ? "strong" : a.weight >= 0.45 ? "medium" : "light") +
        " (" + Math.round(a.weight * 100) + " %)" })))
    : el("p", { text: "No body area stimulated." });
  return el("div", { class: "bodymap" }, figure("front"), figure("back"), words);
}

function timelineSvg(check) {
  const total = check.total_s;
  const W = 600, H = 54;
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "timeline-svg", role: "img",
    "aria-label": "Timeline: " + check.timeline.map((t) => t.name + " " + minutes(t.end_s - t.start_s)).join(", ") });
  for (const seg of check.timeline) {
    const x = W * seg.start_s / total, w = Math.max(1, W * (seg.end_s - seg.start_s) / total);
    const r = svg("rect", { x, y: 6, width: w, height: 26, class: "seg " + seg.kind });
    r.append(svg("title", { text: seg.name + " · " + minutes(seg.end_s - seg.start_s) +
      (seg.impulse_s ? " · " + seg.impulse_s + " s on / " + seg.pause_s + " s off" : "") }));
    g.append(r);
    if (seg.impulse_s) {  // impulse/pause as a comb under the exercise
      const period = seg.impulse_s + seg.pause_s;
      const n = Math.min(400, Math.floor((seg.end_s - seg.start_s) / period));
      const step = w / Math.max(1, (seg.end_s - seg.start_s) / period);
      for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 60))) {
        g.append(svg("rect", { x: x + i * step, y: 36, width: Math.max(0.5, step * seg.impulse_s / period), height: 8, class: "impulse" }));
      }
    }
  }
  const limit = check.suit_block;
  g.append(svg("text", { x: 2, y: 53, class: "axis", text: "0" }));
  g.append(svg("text", { x: W - 2, y: 53, "text-anchor": "end", class: "axis", text: minutes(total) }));
  return el("figure", {}, g, el("figcaption", { id: "suit-block", class: limit.ok ? "ok" : "no", text: limit.says }));
}

// -- the library -----------------------------------------------------------------------------
async function libraryPage() {
  const q = el("input", { type: "text", id: "search", "aria-label": "Search workouts", placeholder: "Search" });
  const archived = el("input", { type: "checkbox", id: "show-archived" });
  const out = el("div");
  async function refresh() {
    const r = await api("GET", "/library?q=" + encodeURIComponent(q.value) + (archived.checked ? "&archived=true" : ""));
    out.replaceChildren(...r.data.workouts.map((w) => el("div", { class: "card" },
      el("h2", {}, el("a", { href: "#/workouts/" + w.id, text: w.title })),
      el("p", { text: (w.builtin ? "built in" : "the studio's own") + (w.archived ? " · archived" : "") + " · version " + w.hash.slice(0, 8) }),
      el("div", { class: "row" },
        el("button", { type: "button", text: "Duplicate", onclick: async () => {
          const a = await api("POST", "/library/" + w.id + "/duplicate");
          if (a.ok) location.hash = "#/workouts/" + a.data.id;
        } }),
        el("a", { class: "button", href: "/api/v1/library/" + w.id + "/yaml", text: "Export YAML" }),
        w.builtin ? null : el("button", { type: "button", text: w.archived ? "Bring back" : "Archive", onclick: async () => {
          await api("POST", "/library/" + w.id + "/archive", { archived: !w.archived }); await refresh();
        } })))));
  }
  q.oninput = refresh; archived.onchange = refresh;
  show("Workouts", el("div", { class: "row" }, el("a", { class: "button primary", href: "#/workouts/new", id: "new-workout", text: "New workout" }),
    el("label", {}, "Search", q), el("label", { class: "check", for: "show-archived" }, archived, "Show archived")), out);
  await refresh();
}

// -- the editor ------------------------------------------------------------------------------
async function editorPage(id) {
  let text = NEW_WORKOUT, entry = null;
  if (id !== "new") {
    const r = await api("GET", "/library/" + id);
    if (!r.ok) { show("Workout", problemBox(r.data)); return; }
    entry = r.data; text = entry.yaml;
  }
  const area = el("textarea", { id: "yaml", spellcheck: "false", "aria-label": "Workout YAML", rows: 30, "aria-describedby": "problems" });
  area.value = text;
  const gutter = el("div", { class: "gutter", "aria-hidden": "true" });
  const problemsBox = el("div", { id: "problems", "aria-live": "polite" });
  const side = el("div", { class: "designer-side" });
  const saveOut = el("p", { id: "save-status", "aria-live": "polite" });
  let last = null, pending = null, seq = 0;

  function drawGutter(problems) {
    const lines = area.value.split("\n").length;
    const at = {};
    for (const p of problems) if (p.line) (at[p.line] = at[p.line] || []).push(p);
    gutter.replaceChildren(...Array.from({ length: lines }, (_, i) => {
      const ps = at[i + 1];
      const bad = ps && ps.some((p) => p.severity === "error");
      return el("div", { class: ps ? (bad ? "line error" : "line warning") : "line",
        title: ps ? ps.map((p) => p.message).join("\n") : null, text: (ps ? (bad ? "✗ " : "! ") : "") + (i + 1) });
    }));
    gutter.scrollTop = area.scrollTop;
  }
  function goToLine(n) {
    const lines = area.value.split("\n");
    const start = lines.slice(0, n - 1).reduce((s, l) => s + l.length + 1, 0);
    area.focus(); area.setSelectionRange(start, start + (lines[n - 1] || "").length);
  }
  async function check() {
    const mine = ++seq;
    const r = await api("POST", "/designer/check", { yaml: area.value });
    if (mine !== seq) return;  // a newer edit is being checked
    if (!r.ok) { last = null; drawGutter([]); problemsBox.replaceChildren(problemBox(r.data)); return; }
    last = r.data;
    drawGutter(last.problems);
    problemsBox.replaceChildren(last.problems.length
      ? el("ul", { class: "problems" }, ...last.problems.map((p) => el("li", { class: p.severity },
        el("button", { type: "button", class: "link", onclick: () => goToLine(p.line || 1),
          text: (p.severity === "error" ? "Error" : "Warning") + (p.line ? " line " + p.line : "") + ": " + p.message }))))
      : el("p", { class: "ok", text: "No problems: this workout can be used." }));
    if (last.ok) drawSide();
    else if (side.firstChild && !side.querySelector(".stale")) {
      side.prepend(el("p", { class: "stale", role: "note", text: "Fix the errors to see this workout: showing the last version without errors." }));
    }
    say(last.ok ? "Workout checked: no errors" : last.problems.filter((p) => p.severity === "error").length + " problem(s)");
  }
  // the form: each change goes through the API's ruamel round-trip (comments and order kept)
  async function change(changes) {
    const a = await api("POST", "/designer/edit", { yaml: area.value, changes });
    if (!a.ok) { problemsBox.replaceChildren(problemBox(a.data)); return; }
    area.value = a.data.yaml;
    await check();
  }
  function exercisePaths() {  // the suit exercises in order, with their place in the YAML
    const out = [];
    (last.form.phases || []).forEach((ph, pi) => (ph.exercises || []).forEach((ex, ei) => out.push({ ex, path: ["phases", pi, "exercises", ei] })));
    return out;
  }
  function field(label, value, path, kind) {
    const input = el("input", { type: kind === "number" ? "number" : "text", value: value === undefined ? "" : value,
      step: kind === "number" ? "any" : null, "aria-label": label });
    input.onchange = () => change([{ path, value: kind === "number" ? Number(input.value) : input.value }]);
    return el("label", { class: "field" }, label, input);
  }
  function drawForm() {
    const f = last.form;
    const programs = Object.entries(f.programs || {}).map(([name, p]) => el("fieldset", {},
      el("legend", { text: "Program " + name }),
      ...["frequency_hz", "pulse_width_us", "impulse_s", "pause_s"].map((k) =>
        field(k.replace("_", " ").replace("_", " "), p[k], ["programs", name, k], "number"))));
    const phases = (f.phases || []).map((ph, pi) => ph.kind === "suit"
      ? el("fieldset", {}, el("legend", { text: "Suit block" }), ...(ph.exercises || []).map((ex, ei) => {
        const base = ["phases", pi, "exercises", ei];
        const weights = Object.entries(ex.channels || {}).map(([k, w]) => field(k + " weight", w, [...base, "channels", k], "number"));
        return el("div", { class: "exercise-form" }, field("Exercise", ex.name, [...base, "name"]),
          field("Duration", ex.duration, [...base, "duration"]),
          typeof ex.program === "string" ? field("Program", ex.program, [...base, "program"]) : null, ...weights);
      }))
      : el("fieldset", {}, el("legend", { text: ph.kind === "warmup" ? "Warm-up" : "Stretching" }),
        field("Duration", ph.duration, ["phases", pi, "duration"])));
    return el("details", { class: "form", id: "workout-form" }, el("summary", { text: "Edit in a form" }), ...programs, ...phases);
  }
  function drawSide() {
    const exercises = last.exercises;
    const pick = el("select", { id: "map-exercise", "aria-label": "Body map of" },
      el("option", { value: "-1", text: "All exercises" }),
      ...exercises.map((e, i) => el("option", { value: String(i), text: e.name })));
    if (side.dataset.pick && Number(side.dataset.pick) < exercises.length) pick.value = side.dataset.pick;
    const mapBox = el("div");
    const tap = async (ch, w) => {
      const i = Number(pick.value);
      const at = exercisePaths()[i];
      if (!at) return;
      const has = at.ex.channels || {};
      const key = ch in has ? ch : ch.replace(/_(left|right)$/, "");
      const next = w >= 0.85 ? null : w >= 0.55 ? 0.9 : w >= 0.25 ? 0.6 : 0.3;
      side.dataset.pick = String(i);
      await change([{ path: [...at.path, "channels", key], value: next }]);
    };
    const draw = () => {
      const i = Number(pick.value);
      let areas = exercises[Math.max(i, 0)] ? exercises[Math.max(i, 0)].areas : [];
      if (i < 0) {  // every area once, at the most any exercise asks of it
        const most = new Map();
        for (const a of exercises.flatMap((e) => e.areas)) {
          if (!most.has(a.channel) || most.get(a.channel).weight < a.weight) most.set(a.channel, a);
        }
        areas = [...most.values()];
      }
      mapBox.replaceChildren(bodyMap(areas, i < 0 ? "All exercises" : exercises[i].name, i < 0 ? null : tap),
        el("p", { class: "hint", text: i < 0 ? "Pick an exercise to set its areas by tapping them." : "Tap an area to set its weight: light, medium, strong, off." }));
    };
    pick.onchange = () => { side.dataset.pick = pick.value; draw(); };
    draw();
    const formOpen = document.getElementById("workout-form");
    const form = drawForm();
    if (formOpen && formOpen.open) form.open = true;
    side.replaceChildren(el("h2", { text: last.title }), timelineSvg(last), el("h2", { text: "Body map" }), pick, mapBox, form);
  }
  area.oninput = () => { drawGutter(last ? last.problems : []); clearTimeout(pending); pending = setTimeout(check, 250); };
  area.onscroll = () => { gutter.scrollTop = area.scrollTop; };

  const saveButton = el("button", { class: "primary", type: "button", id: "save", text: "Save", onclick: async () => {
    const a = entry ? await api("POST", "/library/" + entry.id + "/versions", { yaml: area.value })
      : await api("POST", "/library", { yaml: area.value });
    if (!a.ok) { saveOut.replaceChildren(problemBox(a.data)); return; }
    const fresh = !entry;
    entry = a.data;
    saveOut.replaceChildren(el("span", { class: "ok", text: "Saved version " + entry.hash.slice(0, 12) }));
    saveOut.dataset.hash = entry.hash;
    if (fresh) history.replaceState(null, "", "#/workouts/" + entry.id);
  } });

  // trying it on simulated bodies
  const clients = el("input", { type: "number", id: "try-clients", min: 1, max: 20, value: 8 });
  const first = el("input", { type: "checkbox", id: "try-first" });
  // who: N seeded simulated clients, or the studio's own clients at their last settings
  const who = el("select", { id: "try-who", "aria-label": "Try it on" },
    el("option", { value: "seeded", text: "Simulated clients" }),
    el("option", { value: "studio", text: "Our clients (their last settings)" }));
  const ours = el("fieldset", { id: "try-ours", class: "ours" },
    el("legend", { text: "Clients to try it on (up to 20)" }));
  ours.style.display = "none"; // through the CSSOM: the page's CSP refuses style attributes
  const seededBox = el("span", { class: "row" }, el("label", {}, "Clients", clients),
    el("label", { class: "check", for: "try-first" }, first, "First session"));
  who.onchange = async () => {
    const studio = who.value === "studio";
    ours.style.display = studio ? "" : "none"; seededBox.style.display = studio ? "none" : "";
    if (studio && ours.querySelectorAll("input").length === 0) {
      const r = await api("GET", "/clients");
      const people = r.ok ? r.data.clients : [];
      if (!people.length) ours.append(el("p", { text: "No clients yet: add them on the Clients page." }));
      for (const c of people) {
        const box = el("input", { type: "checkbox", id: "try-client-" + c.id, value: c.id });
        ours.append(el("label", { class: "check", for: box.id }, box, c.name));
      }
    }
  };
  const intensity = {};
  const shift = {};
  const progress = el("progress", { id: "try-progress", max: 1, value: 0, hidden: true });
  const doing = el("p", { id: "try-doing", "aria-live": "polite" });
  const report = el("div", { id: "report" });
  let kept = null;
  async function tryIt() {
    const body = { yaml: area.value, clients: Number(clients.value), first_session: first.checked, intensity_mA: intensity };
    if (who.value === "studio") {
      body.studio_clients = [...ours.querySelectorAll("input:checked")].map((x) => x.value);
      body.shift_mA = shift;
      if (!body.studio_clients.length) { report.replaceChildren(el("p", { class: "no", text: "Pick at least one client to try it on." })); return; }
    }
    const a = await api("POST", "/designer/runs", body);
    if (!a.ok) { report.replaceChildren(problemBox(a.data)); return; }
    progress.hidden = false;
    let run = a.data;
    while (run.state === "running") {
      progress.value = run.progress; doing.textContent = run.doing + "…";
      await new Promise((ok) => setTimeout(ok, 300));
      const r = await api("GET", "/designer/runs/" + run.id);
      run = r.data;
    }
    progress.hidden = true;
    if (run.state === "failed") { doing.textContent = "The simulation failed: " + run.error; return; }
    doing.textContent = "Done in " + run.seconds + " s";
    drawReport(run.result);
  }
  function drawReport(doc) {
    const sugg = doc.suggestions.length
      ? el("ul", { id: "suggestions", class: "suggestions" }, ...doc.suggestions.map((s) => el("li", { "data-id": s.id },
        el("span", { text: s.text }),
        s.apply ? el("button", { type: "button", class: "apply", text: "Apply and run again", onclick: async () => {
          if (s.apply.shift_mA !== undefined) shift[s.apply.channel] = s.apply.shift_mA;
          else intensity[s.apply.channel] = s.apply.intensity_mA;
          await tryIt();
        } }) : null)))
      : el("p", { id: "suggestions", class: "ok", text: "No suggestions: every area works the muscle and no one will find it too strong." });
    const people = doc.group.studio_clients || [];
    const setTo = people.length
      ? el("div", { id: "try-people" }, el("p", { text: "Tried on " + people.map((p) => p.name).join(", ") + ", each at the set intensities of their last session (40 mA where they have none)" +
          (Object.keys(doc.group.shift_mA || {}).length ? "; changed for everyone: " + Object.entries(doc.group.shift_mA).map(([k, v]) => k + " " + (v > 0 ? "+" : "") + v + " mA").join(", ") : "") }),
        el("ul", {}, ...people.map((p) => el("li", { text: p.says }))))
      : Object.keys(intensity).length
        ? el("p", { text: "Set intensities: " + Object.entries(intensity).map(([k, v]) => k + " " + v + " mA").join(", ") + " (others 40 mA)" })
        : null;
    const clientsWords = el("div", { class: "clients-words" }, ...doc.clients.map((c) => el("details", {},
      el("summary", { text: c.client + ": feels " + c.feels + " at most (CR10 " + c.max_cr10 + ")" }),
      el("ul", {}, ...c.areas.map((a) => el("li", { class: a.recruits && !a.too_strong ? "ok" : "no", text: a.says }))))));
    const pick = el("select", { id: "levels-client", "aria-label": "Levels of" }, ...doc.clients.map((c, i) => el("option", { value: String(i), text: c.client })));
    const levels = el("div");
    const drawLevels = () => levels.replaceChildren(levelsSvg(doc, Number(pick.value)));
    pick.onchange = drawLevels; drawLevels();
    const keep = el("button", { type: "button", id: "keep", text: "Keep to compare", onclick: () => { kept = doc; keep.textContent = "Kept"; } });
    report.replaceChildren(...[
      el("h2", { text: "What the simulated clients will need" }), setTo, sugg,
      el("h3", { text: "Per client and body area" }), clientsWords,
      kept && kept !== doc ? compare(kept, doc) : null,
      el("h2", { text: "How it feels over time (highest CR10 each 5 s)" }), strips(doc),
      el("h2", { text: "Force and fatigue per body area (mean of the group)" }), forceSvg(doc),
      el("h2", { text: "Levels of one client" }), pick, levels, keep].filter((x) => x));
  }
  const tryBox = el("section", { class: "card", "aria-label": "Try it" },
    el("h2", { text: "Try it on simulated bodies" }),
    el("div", { class: "row" }, el("label", {}, "Try it on ", who), seededBox), ours,
    el("button", { type: "button", id: "try", class: "primary", text: "Run the simulation", onclick: tryIt }),
    progress, doing, report);

  const versions = entry && entry.versions ? el("details", { id: "versions" },
    el("summary", { text: entry.versions.length + " saved version(s)" + (entry.builtin ? " (built in: duplicate it to change it)" : "") }),
    el("ul", {}, ...entry.versions.map((v) => el("li", {},
      el("a", { href: "/api/v1/workout-versions/" + v.hash, text: v.hash.slice(0, 12) }),
      " · " + (v.created_at || "built in").slice(0, 16).replace("T", " ") + " · " + v.created_by)))) : null;
  show(entry ? entry.title : "New workout",
    el("div", { class: "designer" },
      el("div", { class: "editor" }, el("div", { class: "code" }, gutter, area), problemsBox,
        el("div", { class: "row" }, saveButton, saveOut), versions),
      side),
    tryBox);
  main.classList.add("wide");
  drawGutter([]);
  await check();
}

// -- the report's pictures ---------------------------------------------------------------------
function strips(doc) {
  const W = 600, H = 40, step = doc.pictures.step_s, total = doc.total_s;
  const box = el("div", { class: "strips" });
  doc.pictures.cr10.forEach((series, i) => {
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": doc.clients[i].client + ": highest CR10 " + doc.clients[i].max_cr10 });
    const y = (v) => H - 2 - (H - 4) * Math.min(v, 10) / 10;
    const pts = series.map((v, k) => `${(W * k * step / total).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    g.append(svg("polyline", { points: pts, class: "cr10" }));
    g.append(svg("line", { x1: 0, x2: W, y1: y(7), y2: y(7), class: "limit" }));
    g.append(svg("text", { x: W - 2, y: y(7) - 2, "text-anchor": "end", class: "limit-label", text: "CR10 7: very strong" }));
    box.append(el("div", { class: "strip" }, el("span", { text: doc.clients[i].client }), g));
  });
  return box;
}
function forceSvg(doc) {
  const W = 290, H = 60, step = doc.pictures.step_s, total = doc.total_s;
  const box = el("div", { class: "multiples" });
  doc.channels.forEach((c, j) => {
    const f = doc.pictures.force_N[j], fat = doc.pictures.fatigue[j];
    const top = Math.max(1, ...f);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": c.label + ": force up to " + top.toFixed(0) + " N" });
    g.append(svg("polyline", { class: "force", points: f.map((v, k) => `${(W * k * step / total).toFixed(1)},${(H - 2 - (H - 12) * v / top).toFixed(1)}`).join(" ") }));
    g.append(svg("polyline", { class: "fatigue", points: fat.map((v, k) => `${(W * k * step / total).toFixed(1)},${(H - 2 - (H - 12) * v).toFixed(1)}`).join(" ") }));
    g.append(svg("text", { x: 2, y: 10, class: "axis", text: c.label + " · force (dark) up to " + top.toFixed(0) + " N · capacity left (dashed)" }));
    box.append(g);
  });
  return box;
}
function levelsSvg(doc, i) {
  const W = 600, H = 160, step = doc.pictures.levels_step_s, total = doc.total_s;
  const series = doc.pictures.levels_mA[i];
  const top = Math.max(10, ...series.flat());
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "levels-svg", role: "img", "aria-label": doc.clients[i].client + ": levels per area up to " + top + " mA" });
  series.forEach((s, j) => {
    g.append(svg("polyline", { class: "level l" + (j % 6), points: s.map((v, k) => `${(W * k * step / total).toFixed(1)},${(H - 2 - (H - 14) * v / top).toFixed(1)}`).join(" ") },
      svg("title", { text: doc.channels[j].label })));
  });
  g.append(svg("text", { x: 2, y: 10, class: "axis", text: "mA, up to " + top }));
  return g;
}
function compare(a, b) {
  const col = (doc, name) => el("div", { class: "card" }, el("h3", { text: name + ": " + doc.workout }),
    doc.suggestions.length ? list(doc.suggestions.map((s) => s.text)) : el("p", { text: "No suggestions" }),
    list(doc.clients.map((c) => c.client + ": CR10 " + c.max_cr10)));
  return el("section", { id: "compare", "aria-label": "Compare" }, el("h2", { text: "Side by side on the same group" }),
    el("div", { class: "compare" }, col(a, "Kept"), col(b, "Now")));
}

window.designerRoute = async function (h) {
  let m;
  if ((m = h.match(/^#\/workouts\/([\w:-]+)$/))) await editorPage(m[1]);
  else await libraryPage();
};
