// golem's web app: chat playground, annotation workspace and admin.
// Plain JavaScript, no build step. Everything a model or a person wrote is
// put in the page with textContent, never as HTML.
"use strict";

const state = { user: null, csrf: "", models: [], flags: [], chat: [], demo: null, rank: null, cmp: null };
const $ = (id) => document.getElementById(id);

// el builds an element; string children become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

// api calls the web API; it throws an Error with the server's message.
async function api(method, path, body, raw) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
  if (body !== undefined) {
    opts.body = raw ? body : JSON.stringify(body);
    opts.headers["Content-Type"] = raw ? "application/x-ndjson" : "application/json";
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    if (r.status === 401 && path !== "/app/api/login") { loggedOut(); }
    const msg = data && (typeof data.error === "string" ? data.error : data.error && data.error.message);
    throw new Error(msg || `${method} ${path}: HTTP ${r.status}`);
  }
  return data;
}

function conversation(box, messages) {
  box.replaceChildren(...messages.map((m) => el("div", { class: "msg" }, el("span", { class: "role" }, m.role + ":"), m.content)));
}

// ---- views ----

const views = ["login", "chat", "demonstrate", "rank", "compare", "labels", "account", "admin"];

function show(view) {
  showError("");
  for (const v of views) $("view-" + v).hidden = v !== view;
  for (const b of document.querySelectorAll("#nav button")) b.classList.toggle("active", b.dataset.view === view);
  const load = { chat: loadChat, demonstrate: loadDemo, rank: loadRank, compare: loadCompare, labels: loadLabels, admin: loadAdmin }[view];
  if (load) load().catch((e) => showError(e.message));
}

function loggedOut() {
  state.user = null;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("progress").textContent = "";
  for (const v of views) $("view-" + v).hidden = v !== "login";
}

async function loggedIn(me) {
  state.user = me.user;
  state.csrf = me.csrf;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("nav-admin").hidden = me.user.role !== "admin";
  $("who").textContent = me.user.name + " (" + me.user.role + ")";
  const [models, flags] = await Promise.all([api("GET", "/app/api/models"), api("GET", "/app/api/flags")]);
  state.models = models.models;
  state.flags = flags.flags;
  await refreshProgress();
  show("demonstrate");
}

async function refreshProgress() {
  const p = await api("GET", "/app/api/progress");
  $("progress").textContent = `${p.demonstrations} written · ${p.rankings} ranked (${p.comparisons} compared) · ${p.skipped} skipped · ${p.prompts} prompts`;
}

// ---- chat ----

async function loadChat() {
  const sel = $("chat-model");
  if (sel.options.length === 0) sel.replaceChildren(...state.models.map((m) => el("option", { value: m }, m)));
  renderChat();
}

function renderChat() { conversation($("chat-log"), state.chat); }

async function sendChat(ev) {
  ev.preventDefault();
  const text = $("chat-input").value;
  if (!text.trim()) return;
  $("chat-input").value = "";
  state.chat.push({ role: "user", content: text });
  const answer = { role: "assistant", content: "" };
  state.chat.push(answer);
  renderChat();
  const node = $("chat-log").lastChild;
  const body = {
    model: $("chat-model").value, stream: true,
    messages: state.chat.slice(0, -1),
    temperature: Number($("chat-temp").value), max_tokens: Number($("chat-max").value),
  };
  const r = await fetch("/v1/chat/completions", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf }, body: JSON.stringify(body),
  });
  if (!r.ok) {
    state.chat.pop();
    const d = await r.json().catch(() => null);
    showError((d && d.error && d.error.message) || `HTTP ${r.status}`);
    return;
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 2);
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const chunk = JSON.parse(line.slice(6));
      const d = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (d && d.content) {
        answer.content += d.content;
        node.lastChild.textContent = answer.content;
      }
    }
  }
  renderChat();
}

// ---- demonstrations ----

async function loadDemo() {
  $("demo-status").textContent = "";
  const r = await api("GET", "/app/api/next?task=demonstrate");
  state.demo = r.prompt;
  $("demo-text").value = "";
  if (!r.prompt) {
    $("demo-prompt").textContent = "No prompt left to write for. Thank you!";
    $("demo-submit").disabled = $("demo-skip").disabled = true;
    return;
  }
  $("demo-submit").disabled = $("demo-skip").disabled = false;
  conversation($("demo-prompt"), r.prompt.messages);
}

async function submitDemo() {
  if (!state.demo) return;
  try {
    const d = await api("POST", "/app/api/demonstrations", { prompt_id: state.demo.id, response: $("demo-text").value });
    await refreshProgress();
    await loadDemo();
    $("demo-status").textContent = `Saved demonstration ${d.id}.`;
  } catch (e) { showError(e.message); }
}

// ---- rankings ----

function flagBoxes(i) {
  return el("div", { class: "flags" }, ...state.flags.map((f) =>
    el("label", {}, el("input", { type: "checkbox", class: "flag", "data-answer": String(i), value: f }), f.replace(/_/g, " "))));
}

async function loadRank() {
  $("rank-status").textContent = "";
  const r = await api("GET", "/app/api/next?task=rank");
  state.rank = r.prompt ? { prompt: r.prompt, answers: [] } : null;
  $("rank-answers").replaceChildren();
  $("rank-skip").disabled = $("rank-resample").disabled = !r.prompt;
  if (!r.prompt) {
    $("rank-prompt").textContent = "No prompt left to rank. Thank you!";
    $("rank-submit").disabled = true;
    return;
  }
  conversation($("rank-prompt"), r.prompt.messages);
  await sampleRank();
}

function showNotice(id, msg) {
  $(id).textContent = msg;
  $(id).hidden = !msg;
}

// samplesNotice explains a sample of fewer distinct answers than asked for
// ("" when there are all of them); 0 or 1 leave nothing to rank.
function samplesNotice(s) {
  const n = s.answers.length;
  if (n < 2) return `The models gave ${n ? "the same answer" : "no answer"} in ${s.tries} tries: there is nothing to rank. Skip this prompt; it will not come back to you.`;
  if (n < s.requested) return `The models gave only ${n} different answers in ${s.tries} tries; rank these.`;
  return "";
}

async function sampleRank() {
  const K = 4;
  const rank = state.rank;
  $("rank-submit").disabled = true;
  showNotice("rank-notice", "");
  $("rank-answers").replaceChildren(el("p", { class: "hint" }, "Sampling answers…"));
  const s = await api("POST", "/app/api/samples", { prompt_id: rank.prompt.id, k: K });
  if (state.rank !== rank) return; // skipped while sampling
  const rankable = s.answers.length >= 2;
  rank.answers = rankable ? s.answers : [];
  rank.reason = rankable ? "" : `${s.answers.length} distinct answers in ${s.tries} tries`;
  const notice = samplesNotice(s);
  showNotice("rank-notice", notice);
  $("rank-answers").replaceChildren(...s.answers.map((a, i) => {
    const sel = el("select", { class: "rank", "data-answer": String(i) }, el("option", { value: "" }, "place…"),
      ...s.answers.map((_, p) => el("option", { value: String(p + 1) }, String(p + 1))));
    return el("div", { class: "answer", id: "answer-" + i },
      el("div", { class: "meta" }, `Answer ${String.fromCharCode(65 + i)} · ${a.model}`),
      el("div", { class: "text" }, a.content),
      ...(rankable ? [el("label", {}, "Place ", sel), flagBoxes(i)] : []));
  }));
  $("rank-submit").disabled = !rankable;
}

// skip skips the prompt of a task for good (for this annotator) and loads
// the next one.
async function skip(task, current, load, status) {
  if (!current) return;
  try {
    await api("POST", "/app/api/skips", { prompt_id: current.prompt.id, task, reason: current.reason || "" });
    await refreshProgress();
    await load();
    $(status).textContent = `Skipped prompt ${current.prompt.id}.`;
  } catch (e) { showError(e.message); }
}

function flagsOf(box, i) {
  return [...box.querySelectorAll(`input.flag[data-answer="${i}"]:checked`)].map((c) => c.value);
}

async function submitRank() {
  const a = state.rank && state.rank.answers;
  if (!a || a.length === 0) return;
  const places = [...$("rank-answers").querySelectorAll("select.rank")].map((s) => Number(s.value));
  if (places.some((p) => !p) || new Set(places).size !== places.length) {
    showError("Give every answer a different place (1 is the best).");
    return;
  }
  const order = places.map((p, i) => [p, i]).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
  const responses = a.map((ans, i) => ({ model: ans.model, content: ans.content, flags: flagsOf($("rank-answers"), i) }));
  try {
    const r = await api("POST", "/app/api/rankings", { prompt_id: state.rank.prompt.id, responses, order });
    showError("");
    await refreshProgress();
    await loadRank();
    $("rank-status").textContent = `Saved ranking ${r.id}.`;
  } catch (e) { showError(e.message); }
}

// ---- compare ----

async function loadCompare() {
  $("cmp-status").textContent = "";
  const r = await api("GET", "/app/api/next?task=compare");
  state.cmp = r.prompt ? { prompt: r.prompt, answers: [] } : null;
  $("cmp-answers").replaceChildren();
  showNotice("cmp-notice", "");
  $("cmp-a").disabled = $("cmp-b").disabled = true;
  $("cmp-skip").disabled = !r.prompt;
  if (!r.prompt) {
    $("cmp-prompt").textContent = "No prompt left to compare. Thank you!";
    return;
  }
  conversation($("cmp-prompt"), r.prompt.messages);
  const cmp = state.cmp;
  const s = await api("POST", "/app/api/samples", { prompt_id: r.prompt.id, k: 2 });
  if (state.cmp !== cmp) return; // skipped while sampling
  const rankable = s.answers.length === 2;
  cmp.answers = rankable ? s.answers : [];
  cmp.reason = rankable ? "" : `${s.answers.length} distinct answers in ${s.tries} tries`;
  const notice = samplesNotice(s);
  $("cmp-answers").replaceChildren(...s.answers.map((a, i) => el("div", { class: "answer" },
    el("div", { class: "meta" }, `${i ? "B" : "A"} · ${a.model}`), el("div", { class: "text" }, a.content), ...(rankable ? [flagBoxes(i)] : []))));
  showNotice("cmp-notice", notice);
  $("cmp-a").disabled = $("cmp-b").disabled = !rankable;
}

async function submitCompare(best) {
  const a = state.cmp && state.cmp.answers;
  if (!a || a.length !== 2) return;
  const responses = a.map((ans, i) => ({ model: ans.model, content: ans.content, flags: flagsOf($("cmp-answers"), i) }));
  try {
    const r = await api("POST", "/app/api/rankings", { prompt_id: state.cmp.prompt.id, responses, order: [best, 1 - best] });
    await refreshProgress();
    await loadCompare();
    $("cmp-status").textContent = `Saved comparison ${r.id}.`;
  } catch (e) { showError(e.message); }
}

// ---- my labels ----

async function loadLabels() {
  const l = await api("GET", "/app/api/labels");
  $("labels-demos").replaceChildren(...l.demonstrations.map((d) => {
    const ta = el("textarea", { rows: "4" });
    ta.value = d.response;
    return el("div", { class: "answer" }, el("div", { class: "meta" }, `#${d.id} · prompt ${d.prompt_id}`), ta,
      el("button", { onclick: () => api("PUT", `/app/api/demonstrations/${d.id}`, { response: ta.value }).then(loadLabels, (e) => showError(e.message)) }, "Save"),
      el("button", { onclick: () => api("DELETE", `/app/api/demonstrations/${d.id}`).then(loadLabels, (e) => showError(e.message)) }, "Delete"));
  }));
  $("labels-rankings").replaceChildren(...l.rankings.map((r) => el("div", { class: "answer" },
    el("div", { class: "meta" }, `#${r.id} · prompt ${r.prompt_id} · ${r.responses.length} answers`),
    ...r.order.map((i, place) => el("div", { class: "text" }, `${place + 1}. ${r.responses[i].content}` + (r.responses[i].flags.length ? ` [${r.responses[i].flags.join(", ")}]` : ""))),
    el("button", { onclick: () => api("DELETE", `/app/api/rankings/${r.id}`).then(loadLabels, (e) => showError(e.message)) }, "Delete"))));
}

// ---- admin ----

async function loadAdmin() {
  const u = await api("GET", "/app/api/admin/users");
  $("users").tBodies[0].replaceChildren(...u.users.map((p) => el("tr", {},
    el("td", {}, p.user.username + (p.user.disabled ? " (disabled)" : "")), el("td", {}, p.user.role), el("td", {}, String(p.demonstrations)),
    el("td", {}, String(p.rankings)), el("td", {}, String(p.comparisons)), el("td", {}, String(p.prompts)),
    el("td", {},
      el("button", { class: "user-disable", "data-user": p.user.username, onclick: () => setDisabled(p.user, !p.user.disabled) }, p.user.disabled ? "Enable" : "Disable"),
      el("button", { class: "user-password", "data-user": p.user.username, onclick: () => resetPassword(p.user) }, "Set password")))));
}

async function setDisabled(user, disabled) {
  try {
    await api("POST", `/app/api/admin/users/${user.id}/disabled`, { disabled });
    $("user-status").textContent = `${disabled ? "Disabled" : "Enabled"} ${user.username}.`;
    await loadAdmin();
  } catch (e) { showError(e.message); }
}

async function resetPassword(user) {
  const password = prompt(`New password for ${user.username} (their sessions end):`);
  if (!password) return;
  try {
    await api("POST", `/app/api/admin/users/${user.id}/password`, { password });
    $("user-status").textContent = `Set the password of ${user.username}.`;
  } catch (e) { showError(e.message); }
}

// ---- account ----

async function changePassword(ev) {
  ev.preventDefault();
  try {
    const me = await api("POST", "/app/api/password", { current: $("password-current").value, new: $("password-new").value });
    state.csrf = me.csrf; // a new session: the others ended
    $("password-current").value = $("password-new").value = "";
    $("password-status").textContent = "Password changed.";
  } catch (e) { showError(e.message); }
}

async function importPrompts() {
  let text = $("import-text").value;
  let name = "pasted";
  const f = $("import-file").files[0];
  if (f) { text = await f.text(); name = f.name; }
  try {
    const b = await api("POST", "/app/api/admin/prompts?name=" + encodeURIComponent(name), text, true);
    $("import-status").textContent = `Imported ${b.added} prompts (${b.skipped} already there).`;
    await refreshProgress();
    await loadAdmin();
  } catch (e) { showError(e.message); }
}

async function createUser(ev) {
  ev.preventDefault();
  try {
    const u = await api("POST", "/app/api/admin/users", { username: $("user-name").value, password: $("user-password").value, role: $("user-role").value });
    $("user-status").textContent = `Added ${u.username}.`;
    $("user-name").value = $("user-password").value = "";
    await loadAdmin();
  } catch (e) { showError(e.message); }
}

// ---- start ----

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("#nav button")) b.addEventListener("click", () => show(b.dataset.view));
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const me = await api("POST", "/app/api/login", { username: $("login-username").value, password: $("login-password").value });
      $("login-password").value = "";
      await loggedIn(me);
    } catch (e) { showError(e.message); }
  });
  $("logout").addEventListener("click", () => api("POST", "/app/api/logout").finally(loggedOut));
  $("chat-form").addEventListener("submit", (ev) => sendChat(ev).catch((e) => showError(e.message)));
  $("chat-clear").addEventListener("click", () => { state.chat = []; renderChat(); });
  $("demo-submit").addEventListener("click", submitDemo);
  $("demo-skip").addEventListener("click", () => skip("demonstrate", state.demo && { prompt: state.demo }, loadDemo, "demo-status"));
  $("rank-skip").addEventListener("click", () => skip("rank", state.rank, loadRank, "rank-status"));
  $("cmp-skip").addEventListener("click", () => skip("compare", state.cmp, loadCompare, "cmp-status"));
  $("rank-submit").addEventListener("click", submitRank);
  $("rank-resample").addEventListener("click", () => sampleRank().catch((e) => showError(e.message)));
  $("cmp-a").addEventListener("click", () => submitCompare(0));
  $("cmp-b").addEventListener("click", () => submitCompare(1));
  $("import-submit").addEventListener("click", importPrompts);
  $("user-form").addEventListener("submit", createUser);
  $("password-form").addEventListener("submit", changePassword);
  api("GET", "/app/api/me").then(loggedIn, loggedOut);
});
