// The Notes page: a live copy of this browser session's `Notes` object.
import { Session } from "/ws-sync/ws-sync.js";

const $ = (id) => document.getElementById(id);
const scheme = location.protocol === "https:" ? "wss" : "ws";
const session = new Session(`${scheme}://${location.host}/ws`).connect();
const notes = session.store("NOTES", { title: "", notes: [], total_length: 0 });

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

// Render the state whenever a _SET or _PATCH (or a local edit) changes it.
function render() {
  const { title, notes: items, total_length } = notes.getState();
  if ($("title").value !== title) $("title").value = title;
  $("notes").replaceChildren(
    ...items.map((text, i) => {
      const li = document.createElement("li");
      const remove = document.createElement("button");
      remove.className = "remove";
      remove.title = "Delete";
      remove.textContent = "×";
      // A local edit: the store sends it as a JSON Patch (remove /notes/i).
      remove.onclick = () => notes.update((s) => ({ ...s, notes: s.notes.filter((_, j) => j !== i) }));
      const span = document.createElement("span");
      span.textContent = text;
      li.append(span, remove);
      return li;
    }),
  );
  $("empty").hidden = items.length > 0;
  // total_length is a Python @property: only the server computes it.
  $("summary").textContent = items.length ? `${items.length} note(s) · ${total_length} characters` : "";
}
notes.subscribe(render);
render();

// Typing edits the title directly (one _PATCH per keystroke, validated by
// pydantic on the server); Enter or leaving the field commits it with RENAME.
$("title").addEventListener("input", (e) => notes.set("/title", e.target.value));
$("title").addEventListener("change", (e) => {
  notes.action("RENAME", { new_title: e.target.value.trim() || "Untitled" }).catch(console.warn);
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
    console.warn("ADD_NOTE failed", err);
  }
});

// PROCESS is a long task: progress streams in, Cancel stops it.
const taskRunning = (running) => {
  $("process").disabled = running;
  $("cancel").disabled = !running;
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
  notes.startTask("PROCESS").done.catch(() => taskRunning(false)); // refused or connection lost
});
$("cancel").addEventListener("click", () => notes.cancelTask("PROCESS"));
