// SyncedStore: state sync, local edits, actions, tasks.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ActionError, ConnectionError } from "../../ws_sync/static/ws-sync.js";
import { makeSession } from "./helpers.js";

const INITIAL = { title: "", notes: [] };

/** An open session with the NOTES store already holding `state` from a _SET. */
function synced(state = { title: "T", notes: ["a"], meta: { n: 1 } }, options = {}) {
  const t = makeSession(options, { open: false });
  t.store = t.session.store("NOTES", INITIAL);
  t.ws.open();
  t.ws.receive("_SET:NOTES", state);
  return t;
}

function quietly(fn) {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return fn();
  } finally {
    console.warn = warn;
  }
}

describe("server state", () => {
  it("starts from the initial state and replaces it on _SET", () => {
    const t = makeSession();
    const store = t.session.store("NOTES", INITIAL);
    assert.equal(store.getState(), INITIAL);
    assert.equal(store.synced, false);
    let calls = 0;
    store.subscribe(() => calls++);
    t.ws.receive("_SET:NOTES", { title: "Hello", notes: ["x"] });
    assert.deepEqual(store.getState(), { title: "Hello", notes: ["x"] });
    assert.equal(store.synced, true);
    assert.equal(calls, 1);
  });

  it("returns the same store for the same key, distinct ones for other keys", () => {
    const t = makeSession();
    const a = t.session.store("NOTES", INITIAL);
    assert.equal(t.session.store("NOTES", { other: true }), a);
    assert.notEqual(t.session.store("user1/NOTES", INITIAL), a);
    assert.equal(a.getState(), INITIAL);
  });

  it("a store created before the connection opens waits for the server's _SET", () => {
    const t = makeSession({}, { open: false });
    t.session.store("NOTES", INITIAL);
    t.ws.open();
    assert.deepEqual(t.ws.framesOf("_GET:NOTES"), []);
  });

  it("a store created on an open connection asks for the state", () => {
    const t = makeSession();
    t.session.store("LATE", {});
    assert.deepEqual(t.ws.framesOf("_GET:LATE"), [{ type: "_GET:LATE", data: {} }]);
  });

  it("getOnConnect asks for every store's state on each connect", () => {
    const t = makeSession({ getOnConnect: true }, { open: false });
    t.session.store("A", {});
    t.ws.open();
    t.ws.drop();
    t.clock.runNext();
    t.ws.open();
    assert.equal(t.ws.framesOf("_GET:A").length, 1);
    assert.equal(t.WebSocket.instances[0].framesOf("_GET:A").length, 1);
  });

  it("applies _PATCH, sharing unchanged subtrees", () => {
    const t = synced({ title: "T", notes: [{ text: "a" }, { text: "b" }], meta: { n: 1 } });
    const before = t.store.getState();
    let calls = 0;
    t.store.subscribe(() => calls++);
    t.ws.receive("_PATCH:NOTES", [
      { op: "replace", path: "/notes/1/text", value: "B" },
      { op: "add", path: "/notes/-", value: { text: "c" } },
    ]);
    const after = t.store.getState();
    assert.deepEqual(after.notes, [{ text: "a" }, { text: "B" }, { text: "c" }]);
    assert.equal(after.meta, before.meta);
    assert.equal(after.notes[0], before.notes[0]);
    assert.notEqual(after.notes[1], before.notes[1]);
    assert.equal(before.notes[1].text, "b", "the previous state is untouched");
    assert.equal(calls, 1);
  });

  it("a patch that does not apply triggers _GET and patches are ignored until _SET", () => {
    const t = synced();
    const s0 = t.store.getState();
    quietly(() => t.ws.receive("_PATCH:NOTES", [{ op: "remove", path: "/missing" }]));
    assert.deepEqual(t.ws.framesOf("_GET:NOTES"), [{ type: "_GET:NOTES", data: {} }]);
    assert.equal(t.store.getState(), s0);
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/title", value: "stale" }]);
    assert.equal(t.store.getState().title, "T", "ignored while resyncing");
    assert.equal(t.ws.framesOf("_GET:NOTES").length, 1, "one _GET, not one per patch");
    t.ws.receive("_SET:NOTES", { title: "fresh", notes: [] });
    t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/-", value: "n" }]);
    assert.deepEqual(t.store.getState(), { title: "fresh", notes: ["n"] });
  });

  it("a malicious patch is refused and resynced, not applied", () => {
    const t = synced();
    quietly(() => t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/__proto__/polluted", value: 1 }]));
    assert.equal({}.polluted, undefined);
    assert.equal(t.ws.framesOf("_GET:NOTES").length, 1);
  });

  it("unsubscribe stops notifications", () => {
    const t = synced();
    let calls = 0;
    const unsubscribe = t.store.subscribe(() => calls++);
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/title", value: "1" }]);
    unsubscribe();
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/title", value: "2" }]);
    assert.equal(calls, 1);
    assert.equal(t.store.getState().title, "2");
  });

  it("getState and subscribe are bound (usable as bare functions)", () => {
    const t = synced();
    const { getState, subscribe } = t.store;
    let calls = 0;
    subscribe(() => calls++);
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/title", value: "x" }]);
    assert.equal(getState().title, "x");
    assert.equal(calls, 1);
  });
});

describe("local edits", () => {
  it("set() applies optimistically and sends replace for an existing path", () => {
    const t = synced();
    let calls = 0;
    t.store.subscribe(() => calls++);
    assert.equal(t.store.set("/title", "New"), true);
    assert.equal(t.store.getState().title, "New");
    assert.equal(calls, 1);
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES").at(-1).data, [{ op: "replace", path: "/title", value: "New" }]);
  });

  it("set() adds a missing member, appends with /-, and escapes segment arrays", () => {
    const t = synced();
    t.store.set("/notes/-", "b");
    t.store.set(["meta", "a/b"], 2);
    t.store.set(["notes", 0], "A");
    assert.deepEqual(
      t.ws.framesOf("_PATCH:NOTES").map((f) => f.data[0]),
      [
        { op: "add", path: "/notes/-", value: "b" },
        { op: "add", path: "/meta/a~1b", value: 2 },
        { op: "replace", path: "/notes/0", value: "A" },
      ],
    );
    assert.deepEqual(t.store.getState(), { title: "T", notes: ["A", "b"], meta: { n: 1, "a/b": 2 } });
  });

  it("set() on an impossible path throws and changes nothing", () => {
    const t = synced();
    const s0 = t.store.getState();
    assert.throws(() => t.store.set("/nope/deeper", 1), { name: "PatchError" });
    assert.equal(t.store.getState(), s0);
    assert.equal(t.ws.framesOf("_PATCH:NOTES").length, 0);
  });

  it("update() sends the difference, and nothing when nothing changed", () => {
    const t = synced();
    t.store.update((s) => ({ ...s, notes: [...s.notes, "b"], meta: { ...s.meta, n: 2 } }));
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES")[0].data, [
      { op: "add", path: "/notes/-", value: "b" },
      { op: "replace", path: "/meta/n", value: 2 },
    ]);
    assert.deepEqual(t.store.getState().notes, ["a", "b"]);
    t.store.update((s) => s);
    t.store.update((s) => ({ ...s }));
    assert.equal(t.ws.framesOf("_PATCH:NOTES").length, 1);
    assert.throws(() => t.store.update(() => undefined), TypeError);
  });

  it("patch() applies and sends raw RFC 6902 operations", () => {
    const t = synced();
    const ops = [{ op: "move", from: "/title", path: "/heading" }];
    t.store.patch(ops);
    assert.deepEqual(t.store.getState(), { heading: "T", notes: ["a"], meta: { n: 1 } });
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES")[0].data, ops);
  });

  it("edits made offline are queued, replayed on the next _SET, then sent", () => {
    const t = synced();
    t.ws.drop();
    t.store.set("/title", "offline title");
    t.store.update((s) => ({ ...s, notes: [...s.notes, "offline note"] }));
    assert.equal(t.store.getState().title, "offline title", "applied optimistically");
    assert.equal(t.store.pendingEdits, 2);
    t.clock.runNext();
    t.ws.open();
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES"), [], "not sent before the server state is known");
    t.ws.receive("_SET:NOTES", { title: "server", notes: ["a", "from server"], meta: { n: 5 } });
    assert.deepEqual(t.store.getState(), {
      title: "offline title",
      notes: ["a", "from server", "offline note"],
      meta: { n: 5 },
    });
    assert.deepEqual(
      t.ws.framesOf("_PATCH:NOTES").map((f) => f.data),
      [[{ op: "replace", path: "/title", value: "offline title" }], [{ op: "add", path: "/notes/-", value: "offline note" }]],
    );
    assert.equal(t.store.pendingEdits, 0);
    assert.deepEqual(t.calls.dropped, []);
  });

  it("edits before the first _SET of a connection wait for it", () => {
    const t = makeSession();
    const store = t.session.store("NOTES", INITIAL); // sends _GET
    store.set("/title", "early");
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES"), []);
    t.ws.receive("_SET:NOTES", { title: "server", notes: [] });
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES")[0].data, [{ op: "replace", path: "/title", value: "early" }]);
    assert.equal(store.getState().title, "early");
  });

  it("a queued edit that no longer applies is reported, not lost silently", () => {
    const t = synced({ title: "T", notes: ["a", "b"] });
    t.ws.drop();
    t.store.set("/notes/1", "B");
    t.store.set("/title", "kept");
    t.clock.runNext();
    t.ws.open();
    t.ws.receive("_SET:NOTES", { title: "T", notes: [] });
    assert.equal(t.calls.dropped.length, 1);
    assert.equal(t.calls.dropped[0].key, "NOTES");
    assert.equal(t.calls.dropped[0].reason, "conflict");
    assert.deepEqual(t.calls.dropped[0].ops, [{ op: "replace", path: "/notes/1", value: "B" }]);
    assert.deepEqual(t.store.getState(), { title: "kept", notes: [] });
    assert.equal(t.ws.framesOf("_PATCH:NOTES").length, 1);
  });

  it('offlineEdits: "drop" reports offline edits at once and does not apply them', () => {
    const t = synced(undefined, { offlineEdits: "drop" });
    t.ws.drop();
    const s0 = t.store.getState();
    assert.equal(t.store.set("/title", "lost?"), false);
    assert.equal(t.store.getState(), s0);
    assert.deepEqual(t.calls.dropped, [
      { key: "NOTES", ops: [{ op: "replace", path: "/title", value: "lost?" }], reason: "offline", error: undefined },
    ]);
    t.clock.runNext();
    t.ws.open();
    t.ws.receive("_SET:NOTES", { title: "T", notes: [] });
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES"), []);
  });

  it("the per-store offlineEdits option overrides the session's", () => {
    const t = makeSession({ offlineEdits: "drop" });
    const store = t.session.store("Q", { a: 1 }, { offlineEdits: "queue" });
    t.ws.drop();
    assert.equal(store.set("/a", 2), true);
    assert.equal(store.pendingEdits, 1);
    assert.deepEqual(t.calls.dropped, []);
  });
});

describe("actions", () => {
  it("action() sends $id and resolves with the result", async () => {
    const t = synced();
    const p = t.store.action("RENAME", { new_title: "x" });
    const [frame] = t.ws.framesOf("_ACTION:NOTES");
    assert.equal(frame.data.type, "RENAME");
    assert.equal(frame.data.new_title, "x");
    assert.ok(frame.data.$id !== undefined);
    t.ws.receive("_ACTION_RESULT:NOTES", { id: frame.data.$id, ok: true, result: { length: 1 } });
    assert.deepEqual(await p, { length: 1 });
  });

  it("each action gets its own id and its own answer", async () => {
    const t = synced();
    const p1 = t.store.action("A");
    const p2 = t.store.action("B");
    const [f1, f2] = t.ws.framesOf("_ACTION:NOTES");
    assert.notEqual(f1.data.$id, f2.data.$id);
    t.ws.receive("_ACTION_RESULT:NOTES", { id: f2.data.$id, ok: true, result: "b" });
    t.ws.receive("_ACTION_RESULT:NOTES", { id: f1.data.$id, ok: true, result: "a" });
    assert.deepEqual(await Promise.all([p1, p2]), ["a", "b"]);
  });

  it("rejects with ActionError on ok: false", async () => {
    const t = synced();
    const p = t.store.action("RENAME", { new_title: 3 });
    const id = t.ws.framesOf("_ACTION:NOTES")[0].data.$id;
    t.ws.receive("_ACTION_RESULT:NOTES", { id, ok: false, error: { message: "not a string", type: "ValidationError" } });
    await assert.rejects(p, (e) => e instanceof ActionError && e.message === "not a string" && e.details.type === "ValidationError");
  });

  it("rejects on an _ERROR carrying its id", async () => {
    const t = synced();
    const p1 = t.store.action("A");
    const p2 = t.store.action("B");
    const id2 = t.ws.framesOf("_ACTION:NOTES")[1].data.$id;
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "unknown action B", errors: [], id: id2 });
    await assert.rejects(p2, (e) => e instanceof ActionError && e.message === "unknown action B" && e.details.event === "_ACTION:NOTES");
    const id1 = t.ws.framesOf("_ACTION:NOTES")[0].data.$id;
    t.ws.receive("_ACTION_RESULT:NOTES", { id: id1, ok: true, result: 1 });
    assert.equal(await p1, 1);
    assert.equal(t.calls.errors.length, 1, "also surfaced to onError");
  });

  it("an _ERROR without an id rejects the oldest pending action of that store", async () => {
    const t = synced();
    const other = t.session.store("OTHER", {});
    const pOther = other.action("X");
    const p1 = t.store.action("A");
    const p2 = t.store.action("B");
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "bad params", errors: [{ loc: ["x"] }] });
    await assert.rejects(p1, { name: "ActionError", message: "bad params" });
    const id2 = t.ws.framesOf("_ACTION:NOTES")[1].data.$id;
    t.ws.receive("_ACTION_RESULT:NOTES", { id: id2, ok: true, result: 2 });
    assert.equal(await p2, 2);
    const idX = t.ws.framesOf("_ACTION:OTHER")[0].data.$id;
    t.ws.receive("_ACTION_RESULT:OTHER", { id: idX, ok: true, result: "x" });
    assert.equal(await pOther, "x");
  });

  it("pending actions reject when the connection closes; offline actions reject at once with offlineActions: fail", async () => {
    const t = synced(undefined, { offlineActions: "fail" });
    const p = t.store.action("SLOW");
    t.ws.drop();
    await assert.rejects(p, ConnectionError);
    await assert.rejects(t.store.action("OFFLINE"), ConnectionError);
    assert.equal(t.ws.framesOf("_ACTION:NOTES").length, 1);
  });

  it("sendAction() is fire-and-forget without $id", () => {
    const t = synced();
    assert.equal(t.store.sendAction("ADD_NOTE", { note: "n" }), true);
    assert.deepEqual(t.ws.framesOf("_ACTION:NOTES")[0], { type: "_ACTION:NOTES", data: { type: "ADD_NOTE", note: "n" } });
    t.ws.drop();
    assert.equal(t.store.sendAction("ADD_NOTE", {}), false);
  });

  it("sendBinaryAction() sends the action as _BIN_META plus bytes", () => {
    const t = synced();
    const bytes = new Uint8Array([1, 2]);
    t.store.sendBinaryAction("UPLOAD", { name: "f" }, bytes);
    assert.deepEqual(JSON.parse(t.ws.sent.at(-2)), {
      type: "_BIN_META",
      data: { type: "_ACTION:NOTES", metadata: { type: "UPLOAD", name: "f" } },
    });
    assert.equal(t.ws.sent.at(-1), bytes);
  });

  it("onAction() runs a handler for the server's _ACTION", () => {
    const t = synced();
    const got = [];
    const off = t.store.onAction("FOCUS", (params) => got.push(params));
    t.ws.receive("_ACTION:NOTES", { type: "FOCUS", index: 2 });
    off();
    quietly(() => t.ws.receive("_ACTION:NOTES", { type: "FOCUS", index: 3 }));
    assert.deepEqual(got, [{ index: 2 }]);
  });
});

describe("tasks", () => {
  it("startTask sends _TASK_START, reports progress and done, and resolves done", async () => {
    const t = synced();
    const progress = [];
    const dones = [];
    t.store.onTaskProgress("PROCESS_BATCH", (v) => progress.push(v));
    t.store.onTaskDone("PROCESS_BATCH", (d) => dones.push(d));
    const task = t.store.startTask("PROCESS_BATCH", { items: ["a", "b"] });
    const [start] = t.ws.framesOf("_TASK_START:NOTES");
    assert.equal(typeof start.data.$id, "string", "a $id lets the server's _ERROR name this start");
    assert.deepEqual(start, { type: "_TASK_START:NOTES", data: { type: "PROCESS_BATCH", items: ["a", "b"], $id: start.data.$id } });
    t.ws.receive("_TASK_PROGRESS:NOTES", { type: "PROCESS_BATCH", value: "Processed a" });
    t.ws.receive("_TASK_PROGRESS:NOTES", { type: "OTHER", value: "not mine" });
    t.ws.receive("_TASK_PROGRESS:NOTES", { type: "PROCESS_BATCH", value: "Processed b" });
    const done = { type: "PROCESS_BATCH", status: "completed", result: 2 };
    t.ws.receive("_TASK_DONE:NOTES", done);
    assert.deepEqual(progress, ["Processed a", "Processed b"]);
    assert.deepEqual(dones, [done]);
    assert.deepEqual(await task.done, done);
  });

  it("cancel() sends _TASK_CANCEL and done resolves with the cancelled status", async () => {
    const t = synced();
    const task = t.store.startTask("LONG");
    task.cancel();
    assert.deepEqual(t.ws.framesOf("_TASK_CANCEL:NOTES"), [{ type: "_TASK_CANCEL:NOTES", data: { type: "LONG" } }]);
    t.ws.receive("_TASK_DONE:NOTES", { type: "LONG", status: "cancelled" });
    assert.equal((await task.done).status, "cancelled");
    assert.equal(t.store.cancelTask("LONG"), true);
  });

  it("a failed task resolves done with its error", async () => {
    const t = synced();
    const task = t.store.startTask("JOB");
    t.ws.receive("_TASK_DONE:NOTES", { type: "JOB", status: "failed", error: "boom" });
    assert.deepEqual(await task.done, { type: "JOB", status: "failed", error: "boom" });
  });

  it("an _ERROR for _TASK_START rejects the latest start; closing rejects the rest", async () => {
    const t = synced(undefined, { offlineActions: "fail" });
    const running = t.store.startTask("JOB");
    const second = t.store.startTask("JOB");
    t.ws.receive("_ERROR", { event: "_TASK_START:NOTES", message: "already running", errors: [] });
    await assert.rejects(second.done, { name: "ActionError", message: "already running" });
    t.ws.drop();
    await assert.rejects(running.done, ConnectionError);
    const offline = t.store.startTask("JOB");
    await assert.rejects(offline.done, ConnectionError);
  });

  it("progress listeners can unsubscribe", () => {
    const t = synced();
    const got = [];
    const off = t.store.onTaskProgress("J", (v) => got.push(v));
    t.ws.receive("_TASK_PROGRESS:NOTES", { type: "J", value: 1 });
    off();
    t.ws.receive("_TASK_PROGRESS:NOTES", { type: "J", value: 2 });
    assert.deepEqual(got, [1]);
  });
});

describe("helpers", () => {
  it("toActionType maps camelCase names to SCREAMING_SNAKE action types", async () => {
    const { toActionType } = await import("../../ws_sync/static/ws-sync.js");
    const cases = { rename: "RENAME", addNote: "ADD_NOTE", loadURL: "LOAD_URL", parseHTMLPage: "PARSE_HTML_PAGE", addNote2: "ADD_NOTE2" };
    for (const [name, type] of Object.entries(cases)) assert.equal(toActionType(name), type, name);
  });

  it("decodeBase64 decodes _DOWNLOAD data to bytes", async () => {
    const { decodeBase64 } = await import("../../ws_sync/static/ws-sync.js");
    assert.deepEqual([...decodeBase64("AAH/")], [0, 1, 255]);
  });

  it("a throwing onAction handler does not break later frames", () => {
    const t = synced();
    t.store.onAction("BOOM", () => {
      throw new Error("app bug");
    });
    const error = console.error;
    console.error = () => {};
    try {
      t.ws.receive("_ACTION:NOTES", { type: "BOOM" });
    } finally {
      console.error = error;
    }
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/title", value: "still alive" }]);
    assert.equal(t.store.getState().title, "still alive");
  });
});
