// The board page: a live copy of the one `Board` object all windows share.
import { Session } from "/ws-sync/ws-sync.js";

const COLUMNS = ["todo", "doing", "done"];
const scheme = location.protocol === "https:" ? "wss" : "ws";
const session = new Session(`${scheme}://${location.host}/ws`).connect();
const board = session.store("BOARD", { cards: [] });

const $ = (id) => document.getElementById(id);

// Connection state: connecting → open; a lost connection is "reconnecting"
// (with backoff) or "offline" (the browser says so) until it is back; a tab
// taken over by another is "disconnected" and says why.
const LABELS = { open: "live", connecting: "connecting…", reconnecting: "reconnecting…", offline: "offline", closed: "closed", disconnected: "disconnected" };
session.subscribeState((state) => {
  $("status").dataset.state = state;
  $("status").textContent = LABELS[state] ?? state;
  $("retry").hidden = !["reconnecting", "offline", "disconnected"].includes(state);
  $("why").hidden = state !== "disconnected";
  $("why").textContent = state === "disconnected" ? `Disconnected by the server: ${session.disconnectMessage}` : "";
});
$("retry").addEventListener("click", () => session.retryNow());

const column = (name) => document.querySelector(`.column[data-column="${name}"]`);
const indexOf = (id) => board.getState().cards.findIndex((c) => c.id === id);

// Direct edits: JSON Patches on /cards/<index>/..., validated by the server
// against the Card model and passed on to every other window.
const editCard = (id, field, value) => {
  const i = indexOf(id);
  if (i >= 0) board.set(["cards", i, field], value);
};

function button(text, title, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.title = title;
  b.onclick = onclick;
  return b;
}

// One element per card id, kept across renders, so a card being typed into
// keeps its focus while patches from other windows arrive.
const elements = new Map();

function cardElement(id) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.id = id;
  const text = document.createElement("textarea");
  text.rows = 2;
  text.maxLength = 280;
  text.oninput = () => editCard(id, "text", text.value);
  const move = (step) => {
    const card = board.getState().cards[indexOf(id)];
    const next = COLUMNS[COLUMNS.indexOf(card.column) + step];
    if (next) editCard(id, "column", next);
  };
  const votes = button("", "Vote", () => board.action("VOTE", { card_id: id }));
  votes.className = "votes";
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.append(
    button("←", "Move left", () => move(-1)),
    button("→", "Move right", () => move(1)),
    votes,
    button("×", "Delete", () => board.action("DELETE_CARD", { card_id: id })),
  );
  li.append(text, bar);
  return li;
}

function render() {
  const { cards } = board.getState();
  const byColumn = Object.fromEntries(COLUMNS.map((c) => [c, []]));
  for (const card of cards) {
    let li = elements.get(card.id);
    if (!li) elements.set(card.id, (li = cardElement(card.id)));
    const text = li.querySelector("textarea");
    if (text.value !== card.text) text.value = card.text;
    li.querySelector(".votes").textContent = `▲ ${card.votes}`;
    li.querySelector('[title="Move left"]').disabled = card.column === COLUMNS[0];
    li.querySelector('[title="Move right"]').disabled = card.column === COLUMNS.at(-1);
    (byColumn[card.column] ?? byColumn.todo).push(li);
  }
  const ids = new Set(cards.map((c) => c.id));
  for (const id of elements.keys()) if (!ids.has(id)) elements.delete(id);
  for (const name of COLUMNS) {
    const list = column(name).querySelector(".cards");
    const wanted = byColumn[name];
    const same = wanted.length === list.children.length && wanted.every((li, i) => list.children[i] === li);
    if (!same) list.replaceChildren(...wanted); // only when the order changed: keeps focus
    column(name).querySelector(".count").textContent = wanted.length;
  }
}
board.subscribe(render);
render();

// Adding is an action: the card (with its server-made id) arrives by patch.
for (const name of COLUMNS) {
  const form = column(name).querySelector("form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = form.elements.text.value.trim();
    if (!text) return;
    board.action("ADD_CARD", { text, column: name }).then(() => (form.elements.text.value = ""), console.warn);
  });
}
