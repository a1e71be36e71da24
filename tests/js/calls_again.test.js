// Calls across lost connections: ids unique across page loads, actions queued
// while offline, every promise settled (timeout included), and calls that
// were unanswered when the connection dropped sent again with the same id to
// a protocol-2 server, which remembers ids and never runs one twice.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ActionError, ConnectionError } from "../../ws_sync/static/ws-sync.js";
import { flush, makeSession, track } from "./helpers.js";

/**
 * A protocol-2 server as far as calls go (ws_sync/session.py's `calls`):
 * it runs an action or task start the first time it sees its `$id` and
 * answers a repeat with the answer it gave, running nothing.
 */
class RememberingServer {
  constructor() {
    this.runs = []; // action types and task types, once per run
    this.answers = new Map(); // $id -> _ACTION_RESULT data
  }

  /** Read every frame the client sent on `ws` since the last call; answers go back unless `lose`. */
  take(ws, { lose = false } = {}) {
    ws.read ??= 0;
    for (const frame of ws.frames.slice(ws.read)) {
      if (frame.type.startsWith("_ACTION:")) this._action(ws, frame, lose);
      if (frame.type.startsWith("_TASK_START:") && !this.answers.has(frame.data.$id)) {
        this.answers.set(frame.data.$id, null);
        this.runs.push(frame.data.type);
      }
    }
    ws.read = ws.frames.length;
  }

  _action(ws, { type, data }, lose) {
    const id = data.$id;
    if (!this.answers.has(id)) {
      this.runs.push(data.type);
      this.answers.set(id, { id, ok: true, result: `${data.type}#${this.runs.length}` });
    }
    if (!lose) ws.receive(`_ACTION_RESULT:${type.slice("_ACTION:".length)}`, this.answers.get(id));
  }
}

/** A protocol-2 session with the NOTES store at version 1. */
function versioned(options = {}) {
  const t = makeSession(options);
  t.store = t.session.store("NOTES", {});
  t.ws.hello();
  t.ws.receive("_SET:NOTES", { title: "T" }, { v: 1, epoch: "e1" });
  /** Reconnect (the scheduled retry) and answer the _HELLO with nothing to resume. */
  t.reconnect = () => {
    t.clock.runNext();
    t.ws.open();
    t.ws.hello();
  };
  return t;
}

const actionsOn = (ws) => ws.framesOf("_ACTION:NOTES").map((f) => f.data);

describe("ids", () => {
  it("are a random per-page prefix and a counter, shared by actions, task starts and writes", () => {
    const a = versioned();
    const b = versioned();
    a.store.action("X");
    a.store.startTask("J");
    a.store.set("/title", "U");
    const ids = [...actionsOn(a.ws), ...a.ws.framesOf("_TASK_START:NOTES").map((f) => f.data), ...a.ws.framesOf("_PATCH:NOTES")].map((d) => d.$id);
    assert.equal(new Set(ids).size, 3);
    for (const id of ids) assert.match(id, /^[0-9a-f]{12}-[0-9]+$/);
    b.store.action("X");
    assert.notEqual(actionsOn(b.ws)[0].$id, ids[0], "another page load, other ids");
  });
});

describe("actions while offline", () => {
  it("are queued and sent after the reconnect and its resume", async () => {
    const t = versioned();
    t.ws.drop();
    const a = track(t.store.action("SAVE", { n: 1 }));
    await flush();
    assert.equal(a.state, "pending");
    t.clock.runNext();
    t.ws.open();
    assert.deepEqual(actionsOn(t.ws), [], "not before the server's _HELLO");
    t.ws.hello();
    assert.deepEqual(actionsOn(t.ws).map((d) => d.type), ["SAVE"]);
    t.ws.receive("_ACTION_RESULT:NOTES", { id: actionsOn(t.ws)[0].$id, ok: true, result: 7 });
    await flush();
    assert.deepEqual(a, { state: "fulfilled", value: 7 });
  });

  it("go after the writes made before them", () => {
    const t = versioned();
    t.ws.drop();
    t.store.set("/title", "offline");
    t.store.action("PUBLISH");
    t.reconnect(); // the store resumes with a buffer: a second _HELLO ends the resume
    assert.deepEqual(actionsOn(t.ws), []);
    t.ws.hello();
    const types = t.ws.frames.map((f) => f.type).filter((type) => type !== "_HELLO");
    assert.deepEqual(types, ["_PATCH:NOTES", "_ACTION:NOTES"]);
  });

  it("reject at once with offlineActions: \"fail\"", async () => {
    const t = versioned({ offlineActions: "fail" });
    t.ws.drop();
    await assert.rejects(t.store.action("SAVE"), ConnectionError);
    await assert.rejects(t.store.startTask("JOB").done, ConnectionError);
  });

  it("reject after close(): nothing would send them", async () => {
    const t = versioned();
    t.session.close();
    await assert.rejects(t.store.action("SAVE"), ConnectionError);
  });
});

describe("actionTimeout", () => {
  it("rejects an unanswered action with a TimeoutError that is an ActionError", async () => {
    const t = versioned({ actionTimeout: 1000 });
    const p = t.store.action("SLOW");
    t.clock.advance(999);
    assert.equal(track(p).state, "pending");
    t.clock.advance(1);
    await assert.rejects(p, (e) => e instanceof ActionError && e.name === "TimeoutError" && e.details.timeout === 1000);
    assert.equal(t.session.pendingActions, 0);
    // A late answer is ignored.
    t.ws.receive("_ACTION_RESULT:NOTES", { id: actionsOn(t.ws)[0].$id, ok: true, result: 1 });
  });

  it("counts from the call, also for an action queued offline", async () => {
    const t = versioned({ actionTimeout: 5000 });
    t.ws.drop();
    const p = t.store.action("SAVE");
    t.clock.advance(5000); // the reconnect timer runs too, and the socket stays unopened
    await assert.rejects(p, { name: "TimeoutError" });
    t.ws.open();
    t.ws.hello();
    assert.deepEqual(actionsOn(t.ws), [], "a call that timed out is not sent");
  });

  it("frees the slot of a timed-out action for the next one", () => {
    const t = versioned({ actionTimeout: 1000, maxInFlight: 1 });
    t.store.action("A").catch(() => {});
    t.clock.advance(500);
    t.store.action("B").catch(() => {});
    assert.deepEqual(actionsOn(t.ws).map((d) => d.type), ["A"]);
    t.clock.advance(500);
    assert.deepEqual(actionsOn(t.ws).map((d) => d.type), ["A", "B"]);
  });

  it("null: no timer", () => {
    const t = versioned({ actionTimeout: null, pingInterval: null });
    t.store.action("A");
    assert.equal(t.clock.pending, 0);
  });
});

describe("unanswered calls when the connection drops", () => {
  for (const reached of [true, false]) {
    it(`go again with the same $id after the resume, and run once (the first frame ${reached ? "reached" : "did not reach"} the server)`, async () => {
      const server = new RememberingServer();
      const t = versioned();
      const a = track(t.store.action("ADD", { text: "x" }));
      const sent = actionsOn(t.ws)[0];
      if (reached) server.take(t.ws, { lose: true }); // it ran; the answer is lost with the connection
      t.ws.drop();
      await flush();
      assert.equal(a.state, "pending");
      t.reconnect();
      const again = actionsOn(t.ws);
      assert.deepEqual(again, [sent], "the same frame, same $id");
      server.take(t.ws);
      await flush();
      assert.deepEqual(a, { state: "fulfilled", value: "ADD#1" });
      assert.deepEqual(server.runs, ["ADD"]);
    });
  }

  it("a task start goes again with the same $id; its done stays pending", async () => {
    const server = new RememberingServer();
    const t = versioned();
    const task = t.store.startTask("IMPORT", { url: "u" });
    const done = track(task.done);
    server.take(t.ws);
    const [start] = t.ws.framesOf("_TASK_START:NOTES");
    t.ws.drop();
    t.reconnect();
    assert.deepEqual(t.ws.framesOf("_TASK_START:NOTES"), [start]);
    server.take(t.ws);
    assert.deepEqual(server.runs, ["IMPORT"]);
    t.ws.receive("_TASK_DONE:NOTES", { type: "IMPORT", status: "completed", result: 1 });
    await flush();
    assert.equal(done.state, "fulfilled");
  });

  it("reject with ConnectionError on a protocol-1 server, which does not remember ids", async () => {
    const t = makeSession();
    const store = t.session.store("NOTES", {});
    t.ws.receive("_SET:NOTES", { title: "T" }); // no version: protocol 1
    const a = track(store.action("ADD"));
    const task = track(store.startTask("JOB").done);
    t.ws.drop();
    const queued = track(store.action("LATER"));
    await flush();
    assert.ok(a.error instanceof ConnectionError);
    assert.ok(task.error instanceof ConnectionError);
    t.clock.runNext();
    t.ws.open();
    t.ws.receive("_ERROR", { event: "_HELLO", message: "unknown event" });
    assert.deepEqual(actionsOn(t.ws).map((d) => d.type), ["LATER"], "the one sent before is not sent again");
    assert.equal(queued.state, "pending");
  });

  it("a connection lost before the protocol was agreed resends to the server the last one agreed 2 with", () => {
    const t = versioned();
    t.store.action("A");
    t.ws.drop();
    t.clock.runNext();
    t.ws.open(); // dropped again before the _HELLO answer
    t.ws.drop();
    t.reconnect();
    assert.deepEqual(actionsOn(t.ws).map((d) => d.type), ["A"]);
  });
});
