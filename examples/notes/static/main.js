// The Notes page: a live copy of this browser session's `Notes` object.
// @ts-check: `tsc -p examples` checks action and task names, params and
// results against synced.ts, which `ws-sync typescript` makes from app.py.
import { Session } from "/ws-sync/ws-sync.js";

/** @typedef {import("./synced.js").Notes} Notes */
/** @typedef {import("/ws-sync/ws-sync.js").SyncedStore<Notes, import("./synced.js").NotesActions, import("./synced.js").NotesTasks>} NotesStore */

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
const notes = /** @type {NotesStore} */ (session.store("NOTES", { title: "", notes: [], total_length: 0 }));

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

// The list: one <li> per note, reused across renders. A patch changes a few
// notes, so only the range between the unchanged start and the unchanged end
// of the list is rebuilt: an append or a delete touches one item, not the list.
let shown = [];
const items = [];

function noteItem(text) {
  const li = document.createElement("li");
  const span = document.createElement("span");
  span.textContent = text;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.title = "Delete";
  remove.setAttribute("aria-label", `Delete note: ${text}`);
  remove.textContent = "×";
  // A local edit: the store sends it as a JSON Patch (remove /notes/i).
  remove.onclick = () => notes.patch([{ op: "remove", path: `/notes/${items.indexOf(li)}` }]);
  li.append(span, remove);
  return li;
}

function renderList(next) {
  let start = 0;
  const common = Math.min(shown.length, next.length);
  while (start < common && shown[start] === next[start]) start++;
  let end = 0;
  while (end < common - start && shown[shown.length - 1 - end] === next[next.length - 1 - end]) end++;
  const gone = items.slice(start, shown.length - end);
  const added = next.slice(start, next.length - end).map(noteItem);
  // Focus on a deleted item's button moves to the button of the item now in its place.
  const hadFocus = gone.some((li) => li.contains(document.activeElement));
  const anchor = items[shown.length - end] ?? null;
  for (const li of gone) li.remove();
  for (const li of added) $("notes").insertBefore(li, anchor);
  items.splice(start, gone.length, ...added);
  shown = next;
  if (hadFocus) ((items[start] ?? items[start - 1])?.querySelector("button") ?? $("new-note")).focus();
}

// Render the state whenever a _SET or _PATCH (or a local edit) changes it.
function render() {
  const { title, notes: list, total_length } = notes.getState();
  if ($("title").value !== title) $("title").value = title;
  if (list !== shown) renderList(list);
  $("empty").hidden = list.length > 0;
  // total_length is a Python @property: only the server computes it.
  $("summary").textContent = list.length ? `${list.length} note(s) · ${total_length} characters` : "";
}
notes.subscribe(render);
render();

// Typing edits the title directly (one _PATCH per keystroke, validated by
// pydantic on the server); Enter or leaving the field commits it with RENAME.
$("title").addEventListener("input", () => notes.set("/title", $("title").value));
$("title").addEventListener("change", () => {
  notes.action("RENAME", { new_title: $("title").value.trim() || "Untitled" }).catch(failed("Renaming"));
});

// ADD_NOTE is an action: the note appears when the server's patch arrives.
$("add-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("new-note").value.trim();
  if (!text) return;
  try {
    await notes.action("ADD_NOTE", { note: text });
    $("new-note").value = "";
  } catch (err) {
    failed("Adding the note")(err);
  }
});

// PROCESS is a long task: progress streams in, Cancel stops it.
const taskRunning = (running) => {
  // The button that gets disabled hands keyboard focus to the other one.
  const from = running ? $("process") : $("cancel");
  const moveFocus = document.activeElement === from;
  $("process").disabled = running;
  $("cancel").disabled = !running;
  if (moveFocus) (running ? $("cancel") : $("process")).focus();
};
notes.onTaskProgress("PROCESS", (value) => {
  taskRunning(true);
  $("progress").value = value;
  $("task-status").textContent = `processing… ${Math.round(value * 100)}%`;
});
notes.onTaskDone("PROCESS", ({ status, error }) => {
  taskRunning(false);
  $("task-status").textContent = error ? `${status}: ${error}` : status;
  $("task-status").dataset.status = status;
});
$("process").addEventListener("click", () => {
  taskRunning(true);
  $("progress").value = 0;
  $("task-status").textContent = "starting…";
  delete $("task-status").dataset.status;
  notes.startTask("PROCESS").done.catch((err) => {
    taskRunning(false); // refused or connection lost
    failed("Processing")(err);
  });
});
$("cancel").addEventListener("click", () => notes.cancelTask("PROCESS"));
