// golem's web app: chat playground, annotation workspace and admin.
// Plain JavaScript, no build step. Everything a model or a person wrote is
// put in the page with textContent or renderMarkdown (md.js), which builds
// DOM nodes: never as HTML.
"use strict";

const state = {
  user: null, csrf: "", view: "", models: [], info: {}, flags: [], guidelines: {},
  chat: [], chatAbort: null, demo: null, rank: null, cmp: null, lastSaved: null,
  maxImages: 64, gen: null, icmp: null,
};
const $ = (id) => document.getElementById(id);
const letter = (i) => String.fromCharCode(65 + i);

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

// api calls the web API; it throws an Error with the server's message. A
// change that succeeds clears the error banner: it is stale.
async function api(method, path, body, raw) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
  if (body !== undefined) {
    opts.body = raw ? body : JSON.stringify(body);
    // A FormData body sets its own multipart type and boundary.
    if (!(body instanceof FormData)) opts.headers["Content-Type"] = raw ? "application/x-ndjson" : "application/json";
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    if (r.status === 401 && path !== "/app/api/login") { loggedOut(); }
    throw new Error(errorText(data) || `${method} ${path}: HTTP ${r.status}`);
  }
  if (method !== "GET") showError("");
  return data;
}

function errorText(data) {
  return data && (typeof data.error === "string" ? data.error : data.error && data.error.message);
}

// markdown renders text as Markdown (md.js) in a new element.
function markdown(tag, attrs, text) {
  const e = el(tag, attrs);
  e.append(renderMarkdown(text));
  return e;
}

function conversation(box, messages) {
  box.replaceChildren(...messages.map((m) => el("div", { class: "msg" }, el("span", { class: "role" }, m.role + ":"), m.content)));
}

// showPrompt shows a task's prompt: its image (when it has one) beside its
// messages.
function showPrompt(box, prompt) {
  const msgs = el("div", { class: "msgs" });
  conversation(msgs, prompt.messages);
  if (!prompt.image) {
    box.replaceChildren(...msgs.childNodes);
    box.classList.remove("with-image");
    return;
  }
  const img = el("img", { class: "prompt-image", src: prompt.image, alt: "The image this prompt is about" });
  box.replaceChildren(el("a", { href: prompt.image, target: "_blank", rel: "noopener", class: "prompt-image-link" }, img), msgs);
  box.classList.add("with-image");
}

// handAnswers is the form in which an annotator writes the answers to rank
// or compare when the served models do not read the prompt's image: k
// boxes (the first two needed); done(answers) gets the distinct answers.
function handAnswers(id, k, need, done) {
  const boxes = [];
  for (let i = 0; i < k; i++) {
    const ta = el("textarea", { rows: "3", id: `${id}-${i}`, class: "hand-answer" });
    boxes.push(el("label", { class: "block" }, `Answer ${letter(i)}${i < need ? "" : " (optional)"}`, ta));
  }
  const use = el("button", { type: "button", id: `${id}-use` }, k === 2 ? "Compare these answers" : "Rank these answers");
  use.addEventListener("click", () => {
    const seen = new Set();
    const answers = [];
    for (const b of boxes) {
      const t = b.querySelector("textarea").value;
      if (!t.trim() || seen.has(t.trim())) continue;
      seen.add(t.trim());
      answers.push({ model: "human", content: t });
    }
    if (answers.length < need) { showError(`Write at least ${need} different answers.`); return; }
    showError("");
    done(answers);
  });
  return el("div", { class: "hand", id }, ...boxes, el("div", { class: "buttons" }, use));
}

// promptLine is a prompt's last user message, for lists.
function promptLine(messages) {
  const users = (messages || []).filter((m) => m.role === "user");
  const m = users.length ? users[users.length - 1] : (messages || [])[0];
  const t = m ? m.content.replace(/\s+/g, " ").trim() : "";
  return t.length > 140 ? t.slice(0, 139) + "…" : t;
}

function setStatus(id, text, ...extra) {
  $(id).replaceChildren(text, ...extra);
}

// ---- views ----

const views = ["login", "chat", "demonstrate", "rank", "compare", "generate", "imgcompare", "labels", "account", "admin"];

function show(view) {
  showError("");
  state.view = view;
  for (const v of views) $("view-" + v).hidden = v !== view;
  for (const b of document.querySelectorAll("#nav button")) {
    b.classList.toggle("active", b.dataset.view === view);
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  const load = { chat: loadChat, demonstrate: loadDemo, rank: loadRank, compare: loadCompare, generate: loadGenerate, imgcompare: loadImageCompare, labels: loadLabels, admin: loadAdmin }[view];
  if (load) load().catch((e) => showError(e.message));
}

function loggedOut() {
  state.user = null;
  state.view = "login";
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("progress").textContent = "";
  for (const v of views) $("view-" + v).hidden = v !== "login";
}

async function loggedIn(me) {
  state.user = me.user;
  state.csrf = me.csrf;
  $("logout").hidden = false;
  $("who").textContent = me.user.name || me.user.username;
  const [models, flags] = await Promise.all([api("GET", "/app/api/models"), api("GET", "/app/api/flags")]);
  state.models = models.models;
  state.info = Object.fromEntries((models.info || []).map((m) => [m.name, m]));
  state.maxImages = models.max_images || 64;
  state.flags = flags.flags;
  await Promise.all([refreshProgress(), loadGuidelines()]);
  // The views show only now: a view opened before the models and flags
  // arrived would be left half-loaded, or replaced by Demonstrate here.
  $("nav-admin").hidden = me.user.role !== "admin";
  $("nav").hidden = false;
  show("demonstrate");
}

async function refreshProgress() {
  const p = await api("GET", "/app/api/progress");
  $("progress").textContent = `${p.left_demonstrate} left to write · ${p.left_rank} left to rank · ` +
    `${p.demonstrations} written · ${p.rankings} ranked (${p.comparisons} compared) · ${p.skipped} skipped · ${p.prompts} prompts` +
    (p.image_comparisons || p.left_image_compare ? ` · ${p.image_comparisons} image pairs compared, ${p.left_image_compare} left` : "");
}

// ---- guidelines ----

async function loadGuidelines() {
  const g = await api("GET", "/app/api/guidelines");
  state.guidelines = g.guidelines || {};
  for (const aside of document.querySelectorAll("aside.guidelines")) {
    const t = aside.dataset.task;
    const text = state.guidelines[t] || (t === "compare" ? state.guidelines.rank : "") || "";
    aside.hidden = !text;
    aside.replaceChildren(...(text ? [el("h2", {}, "Guidelines"), markdown("div", { class: "md" }, text)] : []));
  }
}

// ---- chat ----

async function loadChat() {
  const sel = $("chat-model");
  if (sel.options.length === 0) {
    sel.replaceChildren(...state.models.map((m) => el("option", { value: m }, m)));
    chatModelChanged();
  }
  renderChat();
}

// chatModelChanged sets Max tokens to what fits the model's context.
function chatModelChanged() {
  const m = state.info[$("chat-model").value];
  if (!m) return;
  $("chat-max").value = String(m.max_tokens);
  $("chat-max").max = String(m.context - 1);
  $("chat-context").textContent = `context: ${m.context} tokens`;
}

function renderChat() {
  $("chat-log").replaceChildren(...state.chat.map((m) => {
    const body = m.role === "assistant" ? markdown("div", { class: "md" }, m.content) : el("div", { class: "plain" }, m.content);
    return el("div", { class: "bubble " + m.role + (m.stopped ? " stopped" : "") }, el("span", { class: "sr-only" }, m.role + ": "), body);
  }));
  const busy = state.chatAbort !== null;
  $("chat-send").disabled = busy;
  $("chat-stop").disabled = !busy;
  $("chat-regen").disabled = busy || !state.chat.length || state.chat[state.chat.length - 1].role !== "assistant";
  $("chat-log").scrollTop = $("chat-log").scrollHeight;
}

async function sendChat() {
  const text = $("chat-input").value;
  if (!text.trim() || state.chatAbort) return;
  $("chat-input").value = "";
  state.chat.push({ role: "user", content: text });
  if (!(await answerChat())) {
    // The turn failed: it leaves nothing in the history, and the message
    // is back in the box to try again.
    state.chat.pop();
    $("chat-input").value = text;
    renderChat();
  }
}

async function regenerate() {
  if (state.chatAbort || !state.chat.length || state.chat[state.chat.length - 1].role !== "assistant") return;
  const old = state.chat.pop();
  if (!(await answerChat())) {
    state.chat.push(old);
    renderChat();
  }
}

// answerChat streams the model's answer to state.chat (which ends with the
// user's turn), trimmed to the context by the server, into a new bubble.
// It returns false when no answer came: an error (shown), or Stop before
// the first token.
async function answerChat() {
  const model = $("chat-model").value;
  const maxTokens = Number($("chat-max").value);
  const ctrl = new AbortController();
  state.chatAbort = ctrl;
  const answer = { role: "assistant", content: "" };
  try {
    renderChat();
    const fit = await api("POST", "/app/api/chat/fit", { model, messages: state.chat, max_tokens: maxTokens });
    $("chat-trimmed").hidden = !fit.dropped;
    $("chat-trimmed").textContent = fit.dropped ? `The ${fit.dropped} oldest messages are left out: the model sees ${fit.context} tokens at once.` : "";
    state.chat.push(answer);
    renderChat();
    const node = $("chat-log").lastChild.lastChild;
    const r = await fetch("/v1/chat/completions", {
      method: "POST", credentials: "same-origin", signal: ctrl.signal,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf },
      body: JSON.stringify({ model, stream: true, messages: fit.messages, temperature: Number($("chat-temp").value), max_tokens: maxTokens }),
    });
    if (!r.ok) throw new Error(errorText(await r.json().catch(() => null)) || `HTTP ${r.status}`);
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
        if (chunk.error) throw new Error(errorText(chunk));
        const d = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (d && d.content) {
          answer.content += d.content;
          node.textContent = answer.content;
        }
      }
    }
    showError("");
  } catch (e) {
    if (!ctrl.signal.aborted) {
      if (state.chat[state.chat.length - 1] === answer) state.chat.pop();
      showError(e.message);
      return false;
    }
    // Stop keeps what came; when nothing came, the turn is given back.
    answer.stopped = true;
    if (!answer.content) {
      if (state.chat[state.chat.length - 1] === answer) state.chat.pop();
      return false;
    }
  } finally {
    state.chatAbort = null;
    renderChat();
  }
  return true;
}

function chatKey(ev) {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendChat();
  }
}

// ---- demonstrations ----

async function loadDemo() {
  $("demo-status").textContent = "";
  state.demo = null;
  $("demo-submit").disabled = $("demo-skip").disabled = true;
  const r = await api("GET", "/app/api/next?task=demonstrate");
  state.demo = r.prompt;
  $("demo-text").value = "";
  if (!r.prompt) {
    $("demo-prompt").textContent = "No prompt left to write for. Thank you!";
    $("demo-submit").disabled = $("demo-skip").disabled = true;
    return;
  }
  $("demo-submit").disabled = $("demo-skip").disabled = false;
  showPrompt($("demo-prompt"), r.prompt);
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

// ---- answers, ratings and flags ----

// A board holds the answers of a ranking or a comparison and what the
// annotator gave them: the ranking (indices, best first; it may be
// partial), a rating per answer (0 for none) and flags per answer.
function newBoard(answers, from) {
  return {
    answers,
    order: from ? [...from.order] : [],
    ratings: from ? [...from.ratings] : answers.map(() => 0),
    flags: from ? from.flags.map((f) => [...f]) : answers.map(() => []),
  };
}

function ratingSelect(board, i) {
  const sel = el("select", { class: "rating", "data-answer": String(i), "aria-label": `Rating of answer ${letter(i)}, 1 to 7` },
    el("option", { value: "0" }, "–"),
    ...[1, 2, 3, 4, 5, 6, 7].map((v) => el("option", { value: String(v) }, v === 1 ? "1 terrible" : v === 7 ? "7 excellent" : String(v))));
  sel.value = String(board.ratings[i]);
  sel.addEventListener("change", () => { board.ratings[i] = Number(sel.value); });
  return el("label", { class: "rate" }, "Rating ", sel);
}

function flagBoxes(board, i) {
  return el("fieldset", { class: "flags" }, el("legend", {}, `Problems in answer ${letter(i)}`), ...state.flags.map((f) => {
    const box = el("input", { type: "checkbox", class: "flag", "data-answer": String(i), value: f });
    box.checked = board.flags[i].includes(f);
    box.addEventListener("change", () => {
      board.flags[i] = state.flags.filter((g) => g === f ? box.checked : board.flags[i].includes(g));
    });
    return el("label", {}, box, f.replace(/_/g, " "));
  }));
}

// answerCard shows answer i, blind: no model name.
function answerCard(board, i, ...controls) {
  return el("div", { class: "answer", id: "answer-" + i, "data-answer": String(i) },
    el("div", { class: "meta" }, `Answer ${letter(i)}`),
    markdown("div", { class: "text md" }, board.answers[i].content),
    ...controls, ratingSelect(board, i), flagBoxes(board, i));
}

// rankBoard draws board in box for ranking: the ranking so far, then the
// answers not ranked yet. Clicking "Rank next" (or its letter key) gives an
// answer the next place; ranked answers move by dragging, Up and Down,
// and go back with "Unrank". onChange runs after each change.
function rankBoard(box, board, onChange) {
  const redraw = () => { rankBoard(box, board, onChange); onChange(); };
  const move = (i, to) => {
    board.order = board.order.filter((j) => j !== i);
    board.order.splice(Math.max(0, Math.min(to, board.order.length)), 0, i);
    redraw();
  };
  const drag = (card, i) => {
    card.draggable = true;
    card.addEventListener("dragstart", (ev) => { ev.dataTransfer.setData("text/plain", String(i)); card.classList.add("dragging"); });
    card.addEventListener("dragend", () => card.classList.remove("dragging"));
    card.addEventListener("dragover", (ev) => ev.preventDefault());
    card.addEventListener("drop", (ev) => {
      ev.preventDefault();
      const from = Number(ev.dataTransfer.getData("text/plain"));
      if (!Number.isInteger(from) || from === i || !board.answers[from]) return;
      const at = board.order.indexOf(i);
      move(from, at >= 0 ? at : board.order.length);
    });
    return card;
  };
  const ranked = board.order.map((i, place) => drag(answerCard(board, i,
    el("div", { class: "place-row" },
      el("span", { class: "place" }, `${place + 1}.`),
      el("button", { type: "button", class: "move-up", "data-answer": String(i), "aria-label": `Move answer ${letter(i)} up`, onclick: () => move(i, place - 1) }, "↑ Up"),
      el("button", { type: "button", class: "move-down", "data-answer": String(i), "aria-label": `Move answer ${letter(i)} down`, onclick: () => move(i, place + 1) }, "↓ Down"),
      el("button", { type: "button", class: "unrank", "data-answer": String(i), onclick: () => { board.order = board.order.filter((j) => j !== i); redraw(); } }, "Unrank"))), i));
  const rest = board.answers.map((_, i) => i).filter((i) => !board.order.includes(i)).map((i) => drag(answerCard(board, i,
    el("button", { type: "button", class: "rank-next", "data-answer": String(i), onclick: () => move(i, board.order.length) },
      `Rank next (${board.order.length + 1}.) `, el("kbd", {}, letter(i)))), i));
  box.replaceChildren(
    el("h2", { class: "small" }, "Your ranking, best first"),
    ranked.length ? el("div", { class: "ranking" }, ...ranked) : el("p", { class: "hint" }, "Nothing ranked yet: click the best answer first."),
    ...(rest.length ? [el("h2", { class: "small" }, "Not ranked yet"), el("div", { class: "unranked" }, ...rest)] : []));
}

function responsesOf(board) {
  return board.answers.map((a, i) => ({ model: a.model, content: a.content, flags: board.flags[i], rating: board.ratings[i] }));
}

// ---- rankings ----

async function loadRank() {
  $("rank-status").textContent = "";
  state.rank = null;
  $("rank-answers").replaceChildren();
  $("rank-skip").disabled = $("rank-resample").disabled = $("rank-submit").disabled = true;
  showNotice("rank-notice", "");
  const r = await api("GET", "/app/api/next?task=rank");
  state.rank = r.prompt ? { prompt: r.prompt, board: null } : null;
  $("rank-skip").disabled = $("rank-resample").disabled = !r.prompt;
  if (!r.prompt) {
    $("rank-prompt").textContent = "No prompt left to rank. Thank you!";
    return;
  }
  showPrompt($("rank-prompt"), r.prompt);
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
  if (s.images_not_served) return "The served models do not read images: write the answers yourself (they are saved as written by a person), or skip this prompt.";
  if (n < 2) return `The models gave ${n ? "the same answer" : "no answer"} in ${s.tries} tries: there is nothing to rank. Skip this prompt; it will not come back to you.`;
  if (n < s.requested) return `The models gave only ${n} different answers in ${s.tries} tries; rank these.`;
  return "";
}

function drawRank() {
  const rank = state.rank;
  if (!rank.board && rank.byHand) {
    $("rank-answers").replaceChildren(handAnswers("rank-hand", 4, 2, (answers) => {
      rank.board = newBoard(answers);
      rank.shown = answers;
      drawRank();
    }));
    $("rank-submit").disabled = true;
    return;
  }
  if (!rank.board) {
    $("rank-answers").replaceChildren(...rank.shown.map((a) => el("div", { class: "answer" }, markdown("div", { class: "text md" }, a.content))));
    $("rank-submit").disabled = true;
    return;
  }
  const update = () => { $("rank-submit").disabled = rank.board.order.length !== rank.board.answers.length; };
  rankBoard($("rank-answers"), rank.board, update);
  update();
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
  rank.board = rankable ? newBoard(s.answers) : null;
  rank.shown = s.answers;
  rank.byHand = !!s.images_not_served;
  rank.reason = rankable ? "" : s.images_not_served ? "the served models do not read images" : `${s.answers.length} distinct answers in ${s.tries} tries`;
  showNotice("rank-notice", samplesNotice(s));
  drawRank();
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

// saved shows what was saved, with Undo: it deletes the label and brings
// the task back as it was, to label again.
function saved(status, what, id, task, snapshot, restore) {
  const undo = el("button", { type: "button", id: status.replace("status", "undo"), class: "undo" }, "Undo");
  undo.addEventListener("click", async () => {
    try {
      await api("DELETE", `/app/api/rankings/${id}`);
      await refreshProgress();
      restore(snapshot);
      setStatus(status, `Undone: ${what} ${id} is deleted; label this prompt again.`);
    } catch (e) { showError(e.message); }
  });
  setStatus(status, `Saved ${what} ${id}. `, undo);
}

async function submitRank() {
  const rank = state.rank;
  const b = rank && rank.board;
  if (!b || b.order.length !== b.answers.length) {
    if (b) showError("Rank every answer first: click them from best to worst.");
    return;
  }
  try {
    const r = await api("POST", "/app/api/rankings", { prompt_id: rank.prompt.id, responses: responsesOf(b), order: b.order });
    const snapshot = { prompt: rank.prompt, shown: rank.shown, board: newBoard(b.answers, b) };
    await refreshProgress();
    await loadRank();
    saved("rank-status", "ranking", r.id, "rank", snapshot, (snap) => {
      state.rank = snap;
      showPrompt($("rank-prompt"), snap.prompt);
      showNotice("rank-notice", "");
      $("rank-skip").disabled = $("rank-resample").disabled = false;
      drawRank();
    });
  } catch (e) { showError(e.message); }
}

// ---- compare ----

async function loadCompare() {
  $("cmp-status").textContent = "";
  // Nothing to press until the next pair is there.
  state.cmp = null;
  $("cmp-answers").replaceChildren();
  showNotice("cmp-notice", "");
  setCompareButtons(false);
  $("cmp-skip").disabled = true;
  const r = await api("GET", "/app/api/next?task=compare");
  state.cmp = r.prompt ? { prompt: r.prompt, board: null } : null;
  $("cmp-skip").disabled = !r.prompt;
  if (!r.prompt) {
    $("cmp-prompt").textContent = "No prompt left to compare. Thank you!";
    return;
  }
  showPrompt($("cmp-prompt"), r.prompt);
  const cmp = state.cmp;
  const s = await api("POST", "/app/api/samples", { prompt_id: r.prompt.id, k: 2 });
  if (state.cmp !== cmp) return; // skipped while sampling
  const rankable = s.answers.length === 2;
  cmp.board = rankable ? newBoard(s.answers) : null;
  cmp.shown = s.answers;
  cmp.byHand = !!s.images_not_served;
  cmp.reason = rankable ? "" : s.images_not_served ? "the served models do not read images" : `${s.answers.length} distinct answers in ${s.tries} tries`;
  drawCompare();
  showNotice("cmp-notice", samplesNotice(s));
}

function setCompareButtons(on) {
  for (const id of ["cmp-a", "cmp-b", "cmp-tie", "cmp-bad"]) $(id).disabled = !on;
}

function drawCompare() {
  const cmp = state.cmp;
  if (!cmp.board && cmp.byHand) {
    $("cmp-answers").replaceChildren(handAnswers("cmp-hand", 2, 2, (answers) => {
      cmp.board = newBoard(answers);
      cmp.shown = answers;
      drawCompare();
    }));
    setCompareButtons(false);
    return;
  }
  $("cmp-answers").replaceChildren(...(cmp.board ? cmp.board.answers.map((_, i) => answerCard(cmp.board, i))
    : cmp.shown.map((a) => el("div", { class: "answer" }, markdown("div", { class: "text md" }, a.content)))));
  setCompareButtons(!!cmp.board);
}

// submitCompare saves the comparison: best is 0 (A) or 1 (B), or verdict
// is "tie" or "both_bad".
async function submitCompare(best, verdict) {
  const cmp = state.cmp;
  const b = cmp && cmp.board;
  if (!b) return;
  try {
    const order = verdict ? [0, 1] : [best, 1 - best];
    const r = await api("POST", "/app/api/rankings", { prompt_id: cmp.prompt.id, responses: responsesOf(b), order, verdict: verdict || "" });
    const snapshot = { prompt: cmp.prompt, shown: cmp.shown, board: newBoard(b.answers, b) };
    await refreshProgress();
    await loadCompare();
    saved("cmp-status", "comparison", r.id, "compare", snapshot, (snap) => {
      state.cmp = snap;
      showPrompt($("cmp-prompt"), snap.prompt);
      showNotice("cmp-notice", "");
      $("cmp-skip").disabled = false;
      drawCompare();
    });
  } catch (e) { showError(e.message); }
}

// ---- pictures from words ----

// loadGenerate lists the served text-to-image models (chat models cannot
// draw).
async function loadGenerate() {
  const sel = $("gen-model");
  if (sel.options.length === 0) {
    const drawers = state.models.filter((m) => state.info[m] && state.info[m].images);
    sel.replaceChildren(...drawers.map((m) => el("option", { value: m }, m)));
    $("gen-n").max = String(state.maxImages);
  }
  $("gen-none").hidden = sel.options.length > 0;
  $("gen-submit").disabled = sel.options.length === 0;
}

// nextImagePrompt puts the next imported prompt no model has drawn in the
// box; generating it links the images to that prompt (until it is edited).
async function nextImagePrompt() {
  try {
    const r = await api("GET", "/app/api/generations/prompt");
    if (!r.prompt) {
      state.gen = null;
      $("gen-status").textContent = "Every imported prompt has been drawn.";
      return;
    }
    state.gen = r.prompt;
    $("gen-prompt").value = r.prompt.text;
    $("gen-status").textContent = `Imported prompt ${r.prompt.id}.`;
  } catch (e) { showError(e.message); }
}

async function generateImages(ev) {
  ev.preventDefault();
  const text = $("gen-prompt").value;
  const body = { model: $("gen-model").value, n: Number($("gen-n").value) };
  if (state.gen && state.gen.text === text) body.prompt_id = state.gen.id;
  else body.prompt = text;
  $("gen-submit").disabled = true;
  $("gen-status").textContent = "Drawing…";
  try {
    const r = await api("POST", "/app/api/generations", body);
    state.gen = null;
    $("gen-images").replaceChildren(...r.generations.map((g, i) => el("figure", { class: "generated", "data-generation": String(g.id) },
      el("img", { class: "drawn", src: g.image, alt: `Image ${i + 1} of: ${g.prompt}` }),
      el("figcaption", {}, `${g.model} · seed ${g.seed}`))));
    $("gen-status").textContent = `Drew ${r.generations.length} images of “${r.generations[0].prompt}”; they are kept for comparing.`;
    await refreshProgress();
  } catch (e) {
    $("gen-status").textContent = "";
    showError(e.message);
  } finally {
    $("gen-submit").disabled = $("gen-model").options.length === 0;
  }
}

function setImageCompareButtons(on) {
  for (const id of ["icmp-a", "icmp-b", "icmp-tie", "icmp-bad", "icmp-skip"]) $(id).disabled = !on;
}

// loadImageCompare shows the next two images of one prompt, blind.
async function loadImageCompare() {
  state.icmp = null;
  setImageCompareButtons(false);
  $("icmp-images").replaceChildren();
  const r = await api("GET", "/app/api/imagepairs/next");
  if (!r.pair) {
    $("icmp-prompt").textContent = "No pair of images left to compare. Thank you!";
    return;
  }
  state.icmp = r.pair;
  $("icmp-prompt").replaceChildren(el("div", { class: "msg" }, el("span", { class: "role" }, "prompt:"), r.pair.prompt));
  $("icmp-images").replaceChildren(...[r.pair.a, r.pair.b].map((g, i) => el("figure", { class: "candidate", id: "icmp-" + "ab"[i] + "-image", "data-generation": String(g.id) },
    el("figcaption", { class: "meta" }, `Image ${letter(i)}`),
    el("img", { class: "drawn", src: g.image, alt: `Image ${letter(i)} of: ${r.pair.prompt}` }))));
  setImageCompareButtons(true);
}

// submitImageCompare saves the judgement: chosen is 0 (A) or 1 (B), or
// verdict is "tie", "both_bad" or "skip".
async function submitImageCompare(chosen, verdict) {
  const p = state.icmp;
  if (!p) return;
  state.icmp = null; // one judgement per pair, however fast the keys
  setImageCompareButtons(false);
  try {
    const body = { a: p.a.id, b: p.b.id };
    if (verdict) body.verdict = verdict;
    else body.chosen = chosen === 0 ? p.a.id : p.b.id;
    const r = await api("POST", "/app/api/imagecomparisons", body);
    await refreshProgress();
    await loadImageCompare();
    $("icmp-status").textContent = verdict === "skip" ? `Skipped image pair ${r.a} and ${r.b}.` : `Saved image comparison ${r.id}.`;
  } catch (e) {
    state.icmp = p;
    setImageCompareButtons(true);
    showError(e.message);
  }
}

// ---- my labels ----

const verdictText = { "": "", tie: "tie", both_bad: "both bad" };

async function loadLabels() {
  const l = await api("GET", "/app/api/labels");
  $("labels-demos").replaceChildren(...(l.demonstrations.length ? l.demonstrations.map(demoLabel) : [el("p", { class: "hint" }, "None yet.")]));
  $("labels-rankings").replaceChildren(...(l.rankings.length ? l.rankings.map(rankingLabel) : [el("p", { class: "hint" }, "None yet.")]));
}

async function removeLabel(kind, id) {
  if (!confirm(`Delete this ${kind}? It cannot be brought back.`)) return;
  try {
    await api("DELETE", `/app/api/${kind === "demonstration" ? "demonstrations" : "rankings"}/${id}`);
    await refreshProgress();
    await loadLabels();
    $("labels-status").textContent = `Deleted ${kind} ${id}.`;
  } catch (e) { showError(e.message); }
}

function demoLabel(d) {
  const ta = el("textarea", { rows: "4", id: `demo-edit-${d.id}`, "aria-label": `Your answer to: ${promptLine(d.prompt)}` });
  ta.value = d.response;
  return el("div", { class: "answer label", "data-label": String(d.id) },
    el("div", { class: "meta" }, `#${d.id} · `, el("q", {}, promptLine(d.prompt))), ta,
    el("div", { class: "buttons" },
      el("button", { class: "save", onclick: () => api("PUT", `/app/api/demonstrations/${d.id}`, { response: ta.value })
        .then(() => { $("labels-status").textContent = `Saved demonstration ${d.id}.`; }, (e) => showError(e.message)) }, "Save"),
      el("button", { class: "delete", onclick: () => removeLabel("demonstration", d.id) }, "Delete")));
}

function rankingLabel(r) {
  const k = r.responses.length;
  const what = k === 2 ? "comparison" : "ranking";
  const summary = r.verdict ? [el("p", { class: "text" }, `Verdict: ${verdictText[r.verdict]}`)] : [];
  const list = el("ol", { class: "ranked" }, ...r.order.map((i) => {
    const a = r.responses[i];
    const extra = (a.rating ? ` · rated ${a.rating}` : "") + (a.flags.length ? ` · ${a.flags.join(", ").replace(/_/g, " ")}` : "");
    return el("li", {}, markdown("div", { class: "md" }, a.content), ...(extra ? [el("span", { class: "hint" }, extra.slice(3))] : []));
  }));
  const card = el("div", { class: "answer label", "data-label": String(r.id) },
    el("div", { class: "meta" }, `#${r.id} · ${what} of ${k} · `, el("q", {}, promptLine(r.prompt))), ...summary, list);
  card.append(el("div", { class: "buttons" },
    el("button", { class: "edit", onclick: () => editRanking(card, r) }, "Edit"),
    el("button", { class: "delete", onclick: () => removeLabel(what, r.id) }, "Delete")));
  return card;
}

// editRanking turns a ranking's card into its editor: the ranking board,
// and for a comparison its verdict.
function editRanking(card, r) {
  const board = newBoard(r.responses, { order: r.order, ratings: r.responses.map((a) => a.rating), flags: r.responses.map((a) => a.flags) });
  const box = el("div", { class: "board" });
  const k = r.responses.length;
  const verdict = el("select", { class: "verdict" }, el("option", { value: "" }, "as ranked"), el("option", { value: "tie" }, "tie"), el("option", { value: "both_bad" }, "both bad"));
  verdict.value = r.verdict;
  const save = el("button", { class: "save" }, "Save changes");
  const update = () => { save.disabled = !verdict.value && board.order.length !== k; };
  verdict.addEventListener("change", update);
  save.addEventListener("click", async () => {
    const order = board.order.length === k ? board.order : r.responses.map((_, i) => i);
    try {
      await api("PUT", `/app/api/rankings/${r.id}`, { order, flags: board.flags, ratings: board.ratings, verdict: verdict.value });
      await loadLabels();
      $("labels-status").textContent = `Saved ${k === 2 ? "comparison" : "ranking"} ${r.id}.`;
    } catch (e) { showError(e.message); }
  });
  card.replaceChildren(card.firstChild, ...(k === 2 ? [el("label", {}, "Result ", verdict)] : []), box,
    el("div", { class: "buttons" }, save, el("button", { class: "cancel", onclick: () => loadLabels().catch((e) => showError(e.message)) }, "Cancel")));
  rankBoard(box, board, update);
  update();
}

// ---- admin ----

async function loadAdmin() {
  const [u, p] = await Promise.all([api("GET", "/app/api/admin/users"), api("GET", "/app/api/admin/prompts")]);
  $("users").tBodies[0].replaceChildren(...u.users.map((p) => el("tr", {},
    el("td", {}, p.user.username + (p.user.disabled ? " (disabled)" : "")), el("td", {}, p.user.role), el("td", {}, String(p.demonstrations)),
    el("td", {}, String(p.rankings)), el("td", {}, String(p.comparisons)), el("td", {}, String(p.image_comparisons)), el("td", {}, String(p.prompts)),
    el("td", {},
      el("button", { class: "user-disable", "data-user": p.user.username, onclick: () => setDisabled(p.user, !p.user.disabled) }, p.user.disabled ? "Enable" : "Disable"),
      el("button", { class: "user-password", "data-user": p.user.username, onclick: () => resetPassword(p.user) }, "Set password")))));
  $("prompts").tBodies[0].replaceChildren(...p.prompts.map((q) => el("tr", { "data-prompt": String(q.id) },
    el("td", {}, String(q.id)), el("td", {}, ...(q.image ? [el("span", { class: "tag" }, "image"), " "] : []), promptLine(q.messages)), el("td", {}, q.source),
    el("td", {}, String(q.demonstrations)), el("td", {}, String(q.rankings - q.comparisons)), el("td", {}, String(q.comparisons)), el("td", {}, String(q.skips)))));
  $("prompts-more").textContent = p.total > p.prompts.length ? `The first ${p.prompts.length} of ${p.total} prompts.` : `${p.total} prompts.`;
  guideTaskChanged();
}

function guideTaskChanged() {
  $("guide-text").value = state.guidelines[$("guide-task").value] || "";
}

async function saveGuidelines(ev) {
  ev.preventDefault();
  const task = $("guide-task").value;
  try {
    await api("PUT", "/app/api/admin/guidelines", { task, text: $("guide-text").value });
    await loadGuidelines();
    $("guide-status").textContent = `Saved the guidelines for ${task}.`;
  } catch (e) { showError(e.message); }
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

// importPrompts posts the pasted JSONL, or the chosen file with the images
// chosen beside it (multipart: "prompts" and "images").
async function importPrompts() {
  let body = $("import-text").value;
  let name = "pasted";
  const f = $("import-file").files[0];
  const images = [...$("import-images").files];
  if (f) {
    name = f.name;
    body = new FormData();
    body.append("prompts", f, f.name);
    for (const im of images) body.append("images", im, im.webkitRelativePath || im.name);
  } else if (images.length) {
    showError("Choose the JSONL or LLaVA JSON file the images go with.");
    return;
  }
  try {
    const b = await api("POST", "/app/api/admin/prompts?name=" + encodeURIComponent(name), body, true);
    $("import-status").textContent = `Imported ${b.added} prompts (${b.skipped} already there, ${b.images} new images).`;
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

// ---- keyboard ----

// taskKey runs the keyboard shortcuts of the task on the page (listed on
// it). Letters act only outside text fields; Ctrl+Enter and Alt+S also in
// the demonstration's text.
function taskKey(ev) {
  const t = ev.target;
  const typing = t && (t.tagName === "TEXTAREA" || t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "checkbox"));
  const key = ev.key.toLowerCase();
  const run = (f) => { ev.preventDefault(); f(); };
  if (state.view === "demonstrate") {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) run(submitDemo);
    else if (ev.altKey && key === "s") run(() => $("demo-skip").click());
    return;
  }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (state.view === "rank" && state.rank) {
    const b = state.rank.board;
    const i = key.length === 1 ? key.charCodeAt(0) - 97 : -1;
    if (b && i >= 0 && i < b.answers.length) {
      const btn = document.querySelector(`#rank-answers .rank-next[data-answer="${i}"]`);
      if (btn) run(() => btn.click());
    } else if (b && ev.key === "Backspace" && b.order.length) {
      run(() => document.querySelector(`#rank-answers .unrank[data-answer="${b.order[b.order.length - 1]}"]`).click());
    } else if (ev.key === "Enter" && t.tagName !== "BUTTON") {
      run(() => $("rank-submit").click());
    } else if (key === "n") run(() => $("rank-resample").click());
    else if (key === "s") run(() => $("rank-skip").click());
  } else if (state.view === "compare") {
    const id = { a: "cmp-a", b: "cmp-b", t: "cmp-tie", x: "cmp-bad", s: "cmp-skip" }[key];
    if (id) run(() => $(id).click());
  } else if (state.view === "imgcompare") {
    const id = { a: "icmp-a", b: "icmp-b", t: "icmp-tie", x: "icmp-bad", s: "icmp-skip" }[key];
    if (id) run(() => $(id).click());
  }
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
  $("chat-form").addEventListener("submit", (ev) => { ev.preventDefault(); sendChat(); });
  $("chat-input").addEventListener("keydown", chatKey);
  $("chat-model").addEventListener("change", chatModelChanged);
  $("chat-stop").addEventListener("click", () => state.chatAbort && state.chatAbort.abort());
  $("chat-regen").addEventListener("click", regenerate);
  $("chat-clear").addEventListener("click", () => { state.chat = []; $("chat-trimmed").hidden = true; renderChat(); });
  $("demo-submit").addEventListener("click", submitDemo);
  $("demo-skip").addEventListener("click", () => skip("demonstrate", state.demo && { prompt: state.demo }, loadDemo, "demo-status"));
  $("rank-skip").addEventListener("click", () => skip("rank", state.rank, loadRank, "rank-status"));
  $("cmp-skip").addEventListener("click", () => skip("compare", state.cmp, loadCompare, "cmp-status"));
  $("rank-submit").addEventListener("click", submitRank);
  $("rank-resample").addEventListener("click", () => sampleRank().catch((e) => showError(e.message)));
  $("cmp-a").addEventListener("click", () => submitCompare(0));
  $("cmp-b").addEventListener("click", () => submitCompare(1));
  $("cmp-tie").addEventListener("click", () => submitCompare(0, "tie"));
  $("cmp-bad").addEventListener("click", () => submitCompare(0, "both_bad"));
  $("gen-form").addEventListener("submit", generateImages);
  $("gen-next").addEventListener("click", nextImagePrompt);
  $("icmp-a").addEventListener("click", () => submitImageCompare(0));
  $("icmp-b").addEventListener("click", () => submitImageCompare(1));
  $("icmp-tie").addEventListener("click", () => submitImageCompare(0, "tie"));
  $("icmp-bad").addEventListener("click", () => submitImageCompare(0, "both_bad"));
  $("icmp-skip").addEventListener("click", () => submitImageCompare(0, "skip"));
  $("import-submit").addEventListener("click", importPrompts);
  $("user-form").addEventListener("submit", createUser);
  $("password-form").addEventListener("submit", changePassword);
  $("guide-form").addEventListener("submit", saveGuidelines);
  $("guide-task").addEventListener("change", guideTaskChanged);
  document.addEventListener("keydown", taskKey);
  api("GET", "/app/api/me").then(loggedIn, loggedOut);
});
