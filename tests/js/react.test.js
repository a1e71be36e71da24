// React binding: useSynced in a real React tree (react-dom + jsdom).
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { JSDOM } from "jsdom";
import { makeSession, unhandledRejections } from "./helpers.js";

// react-dom looks for a DOM when it loads, so the globals come first.
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;
for (const name of ["HTMLElement", "HTMLInputElement", "Node", "Event", "MouseEvent"]) globalThis[name] = dom.window[name];
if (!("navigator" in globalThis)) globalThis.navigator = dom.window.navigator; // Node >= 21 has its own

const React = await import("react");
const { createRoot } = await import("react-dom/client");
const { SessionProvider, useConnectionState, useSynced } = await import("../../ws_sync/static/react.js");
const { act, createElement: h } = React;

after(() => dom.window.close());

/**
 * The README's Frontend example, verbatim apart from JSX, plus a hook to
 * capture what the component saw on each render.
 */
function Notes({ seen }) {
  const notes = useSynced("NOTES", { title: "", notes: [] });
  seen.push(notes);
  return h(
    "div",
    null,
    h("input", { value: notes.title, onChange: (e) => notes.rename(e.target.value) }),
    h("button", { onClick: () => notes.addNote("New note") }, "Add Note"),
    h(
      "ul",
      null,
      notes.notes.map((note, i) => h("li", { key: i }, note)),
    ),
  );
}

/** Render `element` under a SessionProvider for a fresh fake session. */
async function mount(element, { provider = true } = {}) {
  const t = makeSession({}, { open: false });
  const container = document.createElement("div");
  document.body.appendChild(container);
  const root = createRoot(container);
  const tree = provider ? h(SessionProvider, { session: t.session }, element(t)) : element(t);
  await act(async () => root.render(tree));
  await act(async () => t.ws.open());
  t.container = container;
  t.root = root;
  t.actions = () => t.ws.framesOf("_ACTION:NOTES").map((f) => f.data);
  return t;
}

const texts = (container, sel) => [...container.querySelectorAll(sel)].map((e) => e.textContent);

describe("useSynced", () => {
  it("renders the initial state, then re-renders on _SET and _PATCH", async () => {
    const seen = [];
    const t = await mount(() => h(Notes, { seen }));
    const input = t.container.querySelector("input");
    assert.equal(input.value, "");
    assert.deepEqual(texts(t.container, "li"), []);

    await act(async () => t.ws.receive("_SET:NOTES", { title: "My Notes", notes: ["a"] }));
    assert.equal(input.value, "My Notes");
    assert.deepEqual(texts(t.container, "li"), ["a"]);

    const renders = seen.length;
    await act(async () =>
      t.ws.receive("_PATCH:NOTES", [
        { op: "add", path: "/notes/-", value: "b" },
        { op: "replace", path: "/title", value: "Groceries" },
      ]),
    );
    assert.equal(seen.length, renders + 1, "one patch, one render");
    assert.equal(input.value, "Groceries");
    assert.deepEqual(texts(t.container, "li"), ["a", "b"]);
    assert.equal(seen.at(-1).title, "Groceries");
    assert.notEqual(seen.at(-1), seen.at(-2), "a new view object for a new state");
  });

  it("notes.rename(x) and notes.addNote(y) send the README's actions with $args", async () => {
    const seen = [];
    const t = await mount(() => h(Notes, { seen }));
    await act(async () => t.ws.receive("_SET:NOTES", { title: "T", notes: [] }));
    const notes = seen.at(-1);

    const renamed = notes.rename("x");
    notes.addNote("y");
    const [rename, add] = t.actions();
    assert.deepEqual(rename, { type: "RENAME", $args: ["x"], $id: rename.$id });
    assert.deepEqual(add, { type: "ADD_NOTE", $args: ["y"], $id: add.$id });
    assert.notEqual(rename.$id, add.$id);

    t.ws.receive("_ACTION_RESULT:NOTES", { id: rename.$id, ok: true, result: null });
    assert.equal(await renamed, null, "the caller returns the action promise");
    t.ws.receive("_ACTION_RESULT:NOTES", { id: add.$id, ok: true, result: null });
  });

  it("the README's input and button send RENAME and ADD_NOTE", async () => {
    const seen = [];
    const t = await mount(() => h(Notes, { seen }));
    await act(async () => t.ws.receive("_SET:NOTES", { title: "T", notes: [] }));

    const input = t.container.querySelector("input");
    const setValue = Object.getOwnPropertyDescriptor(window.HTMLInputElement.prototype, "value").set;
    await act(async () => {
      setValue.call(input, "Typed title");
      input.dispatchEvent(new window.Event("input", { bubbles: true }));
    });
    await act(async () => t.container.querySelector("button").dispatchEvent(new window.MouseEvent("click", { bubbles: true })));

    assert.deepEqual(
      t.actions().map(({ type, $args }) => ({ type, $args })),
      [
        { type: "RENAME", $args: ["Typed title"] },
        { type: "ADD_NOTE", $args: ["New note"] },
      ],
    );
    for (const a of t.actions()) t.ws.receive("_ACTION_RESULT:NOTES", { id: a.$id, ok: true, result: null });
    // The server answers the action with a patch; the list shows it.
    await act(async () => t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/-", value: "New note" }]));
    assert.deepEqual(texts(t.container, "li"), ["New note"]);
  });

  it("fire-and-forget calls never cause an unhandled rejection, and awaiting one still throws", async () => {
    const seen = [];
    let t;
    let awaited;
    const unhandled = await unhandledRejections(async () => {
      t = await mount(() => h(Notes, { seen }));
      await act(async () => t.ws.receive("_SET:NOTES", { title: "T", notes: [] }));
      const click = () => t.container.querySelector("button").dispatchEvent(new window.MouseEvent("click", { bubbles: true }));
      await act(async () => click()); // refused by the server
      await act(async () => click()); // lost with the connection
      const [refused] = t.actions();
      t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "no", errors: [], id: refused.$id });
      t.ws.receive("_ACTION_RESULT:NOTES", { id: refused.$id, ok: false, error: { message: "no" } });
      seen.at(-1).startTask("JOB"); // an ignored task handle
      seen.at(-1).action("RAW"); // the helper, ignored too
      const pending = seen.at(-1).rename("kept");
      t.ws.drop();
      await act(async () => click()); // offline
      awaited = await pending.then(
        () => "resolved",
        (e) => e.name,
      );
    });
    assert.deepEqual(unhandled, []);
    assert.equal(awaited, "ConnectionError");
    assert.equal(t.calls.errors.length, 1, "the refusal is reported through onError");
  });

  it("maps arguments: none → {}, one plain object → params, several → $args", async () => {
    const seen = [];
    const t = await mount(() => h(Notes, { seen }));
    const notes = seen.at(-1);
    notes.refresh();
    notes.addUser({ user_data: { name: "Ann" } });
    notes.updateUser({ name: "Ann" }, 30);
    notes.loadURL("https://x");
    const strip = ({ $id, ...rest }) => rest;
    assert.deepEqual(t.actions().map(strip), [
      { type: "REFRESH" },
      { type: "ADD_USER", user_data: { name: "Ann" } },
      { type: "UPDATE_USER", $args: [{ name: "Ann" }, 30] },
      { type: "LOAD_URL", $args: ["https://x"] },
    ]);
    for (const a of t.actions()) t.ws.receive("_ACTION_RESULT:NOTES", { id: a.$id, ok: true, result: null });
  });

  it("setField() patches the field and re-renders optimistically", async () => {
    const seen = [];
    const t = await mount(() => h(Notes, { seen }));
    await act(async () => t.ws.receive("_SET:NOTES", { title: "T", notes: ["a"] }));
    await act(async () => seen.at(-1).setTitle("Local"));
    assert.equal(t.container.querySelector("input").value, "Local");
    await act(async () => seen.at(-1).setNotes((prev) => [...prev, "b"]));
    assert.deepEqual(texts(t.container, "li"), ["a", "b"]);
    await act(async () => seen.at(-1).set("/notes/0", "A"));
    await act(async () => seen.at(-1).update((s) => ({ ...s, title: "Both" })));
    assert.deepEqual(
      t.ws.framesOf("_PATCH:NOTES").map((f) => f.data),
      [
        [{ op: "replace", path: "/title", value: "Local" }],
        [{ op: "replace", path: "/notes", value: ["a", "b"] }],
        [{ op: "replace", path: "/notes/0", value: "A" }],
        [{ op: "replace", path: "/title", value: "Both" }],
      ],
    );
    assert.deepEqual(texts(t.container, "li"), ["A", "b"]);
  });

  it("behaves like a plain object of the state; its functions are stable", async () => {
    const seen = [];
    const t = await mount(() => h(Notes, { seen }));
    await act(async () => t.ws.receive("_SET:NOTES", { title: "T", notes: [] }));
    await act(async () => t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/title", value: "U" }]));
    const [a, b] = seen.slice(-2);
    assert.equal(a.rename, b.rename);
    assert.equal(a.setTitle, b.setTitle);
    assert.deepEqual(Object.keys(b), ["title", "notes"]);
    assert.equal(JSON.stringify(b), JSON.stringify({ title: "U", notes: [] }));
    assert.deepEqual({ ...b }, { title: "U", notes: [] });
    assert.equal(b.then, undefined, "awaiting the view must not call an action");
    assert.equal(await b, b);
    assert.equal(b.$state, t.session.store("NOTES").getState());
    assert.equal(b.$store, t.session.store("NOTES"));
    assert.equal(String(b), "[object Object]");
    assert.deepEqual(t.actions(), [], "none of the above sent an action");
  });

  it("task helpers start and cancel tasks", async () => {
    const seen = [];
    const t = await mount(() => h(Notes, { seen }));
    const task = seen.at(-1).startTask("PROCESS_BATCH", { items: ["a"] });
    seen.at(-1).cancelTask("PROCESS_BATCH");
    const { $id, ...start } = t.ws.framesOf("_TASK_START:NOTES")[0].data;
    assert.deepEqual(start, { type: "PROCESS_BATCH", items: ["a"] });
    assert.equal(typeof $id, "string");
    assert.deepEqual(t.ws.framesOf("_TASK_CANCEL:NOTES")[0].data, { type: "PROCESS_BATCH" });
    t.ws.receive("_TASK_DONE:NOTES", { type: "PROCESS_BATCH", status: "cancelled" });
    assert.equal((await task.done).status, "cancelled");
  });

  it("options: session without a provider, actionTypes, awaitResults: false", async () => {
    const seen = [];
    function Custom({ session }) {
      const v = useSynced("NOTES", { title: "" }, {
        session,
        actionTypes: { rename: "SET_NAME", setVolume: "SET_VOLUME" },
        awaitResults: false,
      });
      seen.push(v);
      return h("span", null, v.title);
    }
    const t = await mount((t) => h(Custom, { session: t.session }), { provider: false });
    await act(async () => t.ws.receive("_SET:NOTES", { title: "direct" }));
    assert.equal(t.container.textContent, "direct");
    assert.equal(seen.at(-1).rename("n"), true, "fire-and-forget returns whether it was sent");
    seen.at(-1).setVolume(3);
    assert.deepEqual(t.actions(), [
      { type: "SET_NAME", $args: ["n"] },
      { type: "SET_VOLUME", $args: [3] },
    ]);
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES"), []);
  });

  it("throws a clear error without a session", async () => {
    function Orphan() {
      useSynced("NOTES", {});
      return null;
    }
    const root = createRoot(document.createElement("div"));
    await assert.rejects(
      async () => act(async () => root.render(h(Orphan))),
      /useSynced: no session; wrap in <SessionProvider/,
    );
  });
});

describe("useConnectionState", () => {
  it("re-renders with the connection state", async () => {
    const states = [];
    function Status() {
      const s = useConnectionState();
      states.push(s);
      return h("b", null, s);
    }
    const t = await mount(() => h(Status));
    assert.equal(t.container.textContent, "open");
    await act(async () => t.ws.drop());
    assert.equal(t.container.textContent, "reconnecting");
    await act(async () => t.clock.runNext()); // the reconnect timer fires
    assert.equal(t.container.textContent, "reconnecting");
    await act(async () => t.ws.open());
    const changes = states.filter((s, i) => s !== states[i - 1]);
    assert.deepEqual(changes, ["connecting", "open", "reconnecting", "open"]);
  });
});
