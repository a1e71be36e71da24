// The board page: a live copy of the one `Board` object all windows share.
// @ts-check: `tsc -p examples` checks action names, params and results
// against synced.ts, which `ws-sync typescript` makes from app.py.
import { Session } from "/ws-sync/ws-sync.js";

/** @typedef {import("./synced.js").Board} Board */
/** @typedef {import("/ws-sync/ws-sync.js").SyncedStore<Board, import("./synced.js").BoardActions, import("./synced.js").BoardTasks>} BoardStore */

const COLUMNS = /** @type {const} */ (["todo", "doing", "done"]);
/** @param {string} id @returns {any} an element of the page (its kind is the page's) */
const $ = (id) => document.getElementById(id);

// Toasts: failed actions, refused edits and server errors are shown, not just logged.
function toast(message, kind = "error") {
  const item = document.createElement("p");
  item.className = `toast ${kind}`;
  item.setAttribute("role", kind === "error" ? "alert" : "status");
  item.textContent = message;
  $("toasts").append(item);
  setTimeout(() => item.remove(), 6000);
}
const failed = (what) => (err) => toast(`${what} failed: ${err?.message ?? err}`);

const scheme = location.protocol === "https:" ? "wss" : "ws";
const session = new Session(`${scheme}://${location.host}/ws`, {
  // An error with an id also fails its action or edit, which say so below.
  onError: (error) => error.id == null && toast(`Server: ${error.message}`),
  onEditsDropped: ({ reason, error }) =>
    toast(reason === "rejected" ? `Edit refused: ${error?.message ?? "invalid"}` : "An edit no longer applied and was dropped"),
}).connect();
const board = /** @type {BoardStore} */ (session.store("BOARD", { cards: [] }));

// Connection state: connecting → open; a lost connection is "reconnecting"
// (with backoff) or "offline" (the browser says so) until it is back; a tab
// taken over by another is "disconnected" and says why. The pill is a live
// region; a lost connection also gets a banner.
const LABELS = { open: "live", connecting: "connecting…", reconnecting: "reconnecting…", offline: "offline", closed: "closed", disconnected: "disconnected" };
const BANNERS = {
  reconnecting: "Connection lost. Reconnecting; your edits are kept and sent when it is back.",
  offline: "You are offline. Your edits are kept and sent when the connection is back.",
  closed: "The connection is closed.",
};
session.subscribeState((state) => {
  $("status").dataset.state = state;
  $("status").textContent = LABELS[state] ?? state;
  $("retry").hidden = !["reconnecting", "offline", "disconnected"].includes(state);
  const banner = state === "disconnected" ? `Disconnected by the server: ${session.disconnectMessage}` : BANNERS[state];
  $("banner").hidden = !banner;
  $("banner").textContent = banner ?? "";
});
$("retry").addEventListener("click", () => session.retryNow());

const column = (name) => document.querySelector(`.column[data-column="${name}"]`);
const lists = Object.fromEntries(COLUMNS.map((c) => [c, column(c).querySelector(".cards")]));
const indexOf = (id) => board.getState().cards.findIndex((c) => c.id === id);

// Direct edits: JSON Patches on /cards/<index>/..., validated by the server
// against the Card model and passed on to every other window.
const editCard = (id, field, value) => {
  const i = indexOf(id);
  if (i >= 0) board.set(["cards", i, field], value);
};

function button(text, label, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.title = label;
  b.setAttribute("aria-label", label);
  b.onclick = onclick;
  return b;
}

// One entry per card id, kept across renders: its element, and the card
// object it shows. The store changes only the objects along a patch's path,
// so a card whose object is the same as last time is skipped without
// touching the DOM, and a change costs one card's update however big the board.
const entries = new Map();

function cardEntry(id) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.id = id;
  const text = document.createElement("textarea");
  text.rows = 2;
  text.maxLength = 280;
  text.setAttribute("aria-label", "Card text");
  text.oninput = () => editCard(id, "text", text.value);
  const move = (step) => {
    const card = board.getState().cards[indexOf(id)];
    const next = COLUMNS[COLUMNS.indexOf(card?.column) + step];
    if (next) editCard(id, "column", next);
  };
  const left = button("←", "Move left", () => move(-1));
  left.className = "left";
  const right = button("→", "Move right", () => move(1));
  right.className = "right";
  const votes = button("", "Vote", () => board.action("VOTE", { card_id: id }).catch(failed("Vote")));
  votes.className = "votes";
  const remove = button("×", "Delete", () => board.action("DELETE_CARD", { card_id: id }).catch(failed("Delete")));
  remove.className = "delete";
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.append(left, right, votes, remove);
  li.append(text, bar);
  return { li, text, left, right, votes, card: null, column: null };
}

function show(entry, card) {
  const old = entry.card;
  if (entry.text.value !== card.text) entry.text.value = card.text;
  if (old?.votes !== card.votes) {
    entry.votes.textContent = `▲ ${card.votes}`;
    entry.votes.setAttribute("aria-label", `${card.votes} votes, add a vote`);
  }
  if (old?.column !== card.column) {
    entry.left.disabled = card.column === COLUMNS[0];
    entry.right.disabled = card.column === COLUMNS.at(-1);
  }
  entry.card = card;
}

// Where focus goes when the focused card leaves its list: the same control of
// the next card (or the previous one), else the column's input.
function focusAfterRemoval(entry) {
  const li = entry.li;
  if (!li.contains(document.activeElement)) return null;
  const role = document.activeElement.className || "textarea";
  const near = li.nextElementSibling ?? li.previousElementSibling;
  const pick = (el) => (role === "textarea" ? el.querySelector("textarea") : el.querySelector(`.${role}`));
  return (near && pick(near)) ?? column(entry.column).querySelector(".add input");
}

let rendered = [];
let generation = 0;

function render() {
  const { cards } = board.getState();
  if (cards === rendered) return;
  generation++;
  const changed = new Set(); // columns whose membership or order may have changed
  const refocus = [];
  const reorder = cards.length !== rendered.length;
  for (let i = 0; i < cards.length; i++) {
    const card = cards[i];
    const before = rendered[i];
    let entry = entries.get(card.id);
    if (!entry) entries.set(card.id, (entry = cardEntry(card.id)));
    entry.seen = generation;
    if (before?.id !== card.id) changed.add(card.column); // inserted, removed or reordered before it
    if (entry.card === card) continue;
    if (entry.column !== card.column) {
      if (entry.column) {
        const active = /** @type {HTMLButtonElement} */ (document.activeElement);
        const focused = entry.li.contains(active) ? active : null;
        changed.add(entry.column);
        if (focused) refocus.push(() => (focused.disabled ? focused.parentElement.querySelector("button:not(:disabled)") : focused));
        entry.li.remove(); // re-inserted into its new column below
      }
      entry.column = card.column;
      changed.add(card.column);
    }
    show(entry, card);
  }
  if (reorder || changed.size) {
    for (const [id, entry] of entries) {
      if (entry.seen === generation) continue;
      const next = focusAfterRemoval(entry);
      if (next) refocus.push(() => next);
      entry.li.remove();
      entries.delete(id);
      changed.add(entry.column);
    }
    for (const name of changed) place(name, cards);
  }
  rendered = cards;
  for (const target of refocus) target()?.focus();
}

// Put the column's cards in board order, moving only what is out of place.
function place(name, cards) {
  const list = lists[name];
  let node = list.firstElementChild;
  let count = 0;
  for (const card of cards) {
    if (card.column !== name) continue;
    count++;
    const li = entries.get(card.id).li;
    if (node === li) node = node.nextElementSibling;
    else list.insertBefore(li, node);
  }
  column(name).querySelector(".count").textContent = String(count);
}

board.subscribe(render);
for (const name of COLUMNS) place(name, []);

// Adding is an action: the card (with its server-made id) arrives by patch.
for (const name of COLUMNS) {
  const form = column(name).querySelector("form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const input = /** @type {HTMLInputElement} */ (form.elements.namedItem("text"));
    const text = input.value.trim();
    if (!text) return;
    board.action("ADD_CARD", { text, column: name }).then(() => (input.value = ""), failed("Adding the card"));
  });
}
