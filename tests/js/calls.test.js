// Action and task-start promises: settled exactly once, matched by id, bounded in flight.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ActionError, ConnectionError, Session } from "../../ws_sync/static/ws-sync.js";
import { fakeWebSocketClass, flush, makeSession, track } from "./helpers.js";

/** An open session with the NOTES store synced. */
function synced(options = {}) {
  const t = makeSession(options);
  t.store = t.session.store("NOTES", {});
  t.ws.receive("_SET:NOTES", { title: "T" });
  t.ids = () => t.ws.framesOf("_ACTION:NOTES").map((f) => f.data.$id);
  t.result = (id, result = null) => t.ws.receive("_ACTION_RESULT:NOTES", { id, ok: true, result });
  return t;
}

describe("settling action promises", () => {
  it("an _ERROR carrying the id rejects that action whatever its event", async () => {
    const t = synced();
    const a = track(t.store.action("A"));
    const b = track(t.store.action("B"));
    const [idA, idB] = t.ids();
    t.ws.receive("_ERROR", { event: "_INVALID", message: "frame too large", errors: [], id: idB });
    await flush();
    assert.equal(b.state, "rejected");
    assert.ok(b.error instanceof ActionError);
    assert.equal(b.error.details.id, idB);
    assert.equal(a.state, "pending");
    t.result(idA, "a");
    await flush();
    assert.deepEqual(a, { state: "fulfilled", value: "a" });
  });

  it("the _ERROR notice of an answered action rejects nothing else, before or after the result", async () => {
    const t = synced();
    const a = track(t.store.action("A"));
    const b = track(t.store.action("B"));
    const c = track(t.store.action("C"));
    const [idA, idB, idC] = t.ids();
    // A: result first, then its notice.
    t.ws.receive("_ACTION_RESULT:NOTES", { id: idA, ok: false, error: { message: "bad A" } });
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "bad A", errors: [], id: idA });
    // B: notice first, then its result.
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "internal error", errors: [], id: idB, ref: "e7f3" });
    t.ws.receive("_ACTION_RESULT:NOTES", { id: idB, ok: false, error: { message: "internal error" } });
    await flush();
    assert.equal(a.state, "rejected");
    assert.equal(a.error.message, "bad A");
    assert.equal(b.state, "rejected");
    assert.equal(b.error.details.ref, "e7f3", "settled by the first answer; the later one is ignored");
    assert.equal(c.state, "pending", "an answer for a settled id rejects no other action");
    t.result(idC, "c");
    await flush();
    assert.deepEqual(c, { state: "fulfilled", value: "c" });
    assert.equal(t.calls.errors.length, 2, "every _ERROR still reaches onError");
  });

  it("once the server has echoed an id, an id-less _ERROR rejects no action", async () => {
    const t = synced();
    const a = track(t.store.action("A"));
    const [idA] = t.ids();
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "no", errors: [], id: idA });
    const b = track(t.store.action("B"));
    t.store.sendAction("LEGACY", { x: 1 }); // no $id: its _ERROR cannot name it
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "unknown action LEGACY", errors: [] });
    await flush();
    assert.equal(a.state, "rejected");
    assert.equal(b.state, "pending");
    t.result(t.ids()[1], "b");
    await flush();
    assert.deepEqual(b, { state: "fulfilled", value: "b" });
  });

  it("the id-less fallback guesses among sent actions of the _ERROR's event, again on each connection", async () => {
    const t = synced({ maxInFlight: 1 });
    const other = t.session.store("OTHER", {});
    const x = track(other.action("X"));
    const a = track(t.store.action("A")); // waits: X holds the only slot
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "bad params", errors: [] });
    t.ws.receive("_ERROR", { event: "_PATCH:OTHER", message: "forbidden path", errors: [] });
    await flush();
    assert.deepEqual([x.state, a.state], ["pending", "pending"], "A was not sent, X is not a NOTES action");
    t.ws.receive("_ERROR", { event: "_ACTION:OTHER", message: "bad params", errors: [] });
    await flush();
    assert.equal(x.state, "rejected");
    assert.equal(t.ids().length, 1, "A went out when X was answered");

    // A server that echoes ids, then a reconnect to one that does not.
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "no", errors: [], id: t.ids()[0] });
    t.ws.drop();
    t.clock.runNext();
    t.ws.open();
    const y = track(other.action("Y"));
    t.ws.receive("_ERROR", { event: "_ACTION:OTHER", message: "bad params", errors: [] });
    await flush();
    assert.equal(a.state, "rejected");
    assert.equal(y.state, "rejected", "the guess is allowed again on a new connection");
  });

  it("a socket error without a close event rejects unanswered calls and reconnects", async () => {
    const t = synced();
    const a = track(t.store.action("A"));
    const task = track(t.store.startTask("JOB").done);
    t.ws.fail();
    await flush();
    assert.equal(a.state, "rejected");
    assert.ok(a.error instanceof ConnectionError);
    assert.ok(task.error instanceof ConnectionError);
    assert.equal(t.session.state, "reconnecting");
    assert.equal(t.clock.pending, 1, "a reconnect is scheduled");
    t.ws.drop(); // its late close event changes nothing
    assert.equal(t.clock.pending, 1);
  });

  it("_DISCONNECT rejects unanswered actions and task starts with the reason", async () => {
    const t = synced();
    const a = track(t.store.action("A"));
    const task = track(t.store.startTask("JOB").done);
    t.ws.receive("_DISCONNECT", "opened elsewhere");
    await flush();
    assert.ok(a.error instanceof ConnectionError);
    assert.match(a.error.message, /disconnected by the server/);
    assert.ok(task.error instanceof ConnectionError);
  });
});

describe("settling task starts", () => {
  it("an _ERROR with a task start's id rejects that start, not the latest", async () => {
    const t = synced();
    const first = track(t.store.startTask("JOB").done);
    const second = track(t.store.startTask("OTHER_JOB").done);
    const [id1] = t.ws.framesOf("_TASK_START:NOTES").map((f) => f.data.$id);
    t.ws.receive("_ERROR", { event: "_TASK_START:NOTES", message: "unknown task JOB", errors: [], id: id1 });
    t.ws.receive("_ERROR", { event: "_TASK_START:NOTES", message: "late notice", errors: [], id: id1 });
    t.ws.receive("_ERROR", { event: "_TASK_START:NOTES", message: "id-less", errors: [] });
    await flush();
    assert.equal(first.state, "rejected");
    assert.equal(first.error.message, "unknown task JOB");
    assert.equal(second.state, "pending", "neither a repeated id nor an id-less _ERROR touches it");
    t.ws.receive("_TASK_DONE:NOTES", { type: "OTHER_JOB", status: "completed", result: 1 });
    await flush();
    assert.equal(second.state, "fulfilled");
  });
});

describe("frames in flight", () => {
  it("maxInFlight bounds the unanswered actions; later calls wait in order", async () => {
    const t = synced({ maxInFlight: 2 });
    const calls = ["A", "B", "C", "D"].map((type) => track(t.store.action(type)));
    const sentTypes = () => t.ws.framesOf("_ACTION:NOTES").map((f) => f.data.type);
    assert.deepEqual(sentTypes(), ["A", "B"]);
    assert.equal(t.session.pendingActions, 4);
    t.result(t.ids()[1], "b");
    assert.deepEqual(sentTypes(), ["A", "B", "C"], "an answer frees one slot");
    t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "no", errors: [], id: t.ids()[0] });
    assert.deepEqual(sentTypes(), ["A", "B", "C", "D"], "so does an _ERROR with the id");
    await flush();
    assert.deepEqual(calls.map((c) => c.state), ["rejected", "fulfilled", "pending", "pending"]);
    assert.equal(t.session.pendingActions, 2);
  });

  it("waiting calls reject with ConnectionError when the connection ends, sent ones too", async () => {
    for (const end of [(t) => t.ws.drop(), (t) => t.session.close(), (t) => t.ws.receive("_DISCONNECT", "bye")]) {
      const t = synced({ maxInFlight: 1, offlineActions: "fail" });
      const calls = ["A", "B", "C"].map((type) => track(t.store.action(type)));
      end(t);
      await flush();
      assert.deepEqual(calls.map((c) => c.error?.name), ["ConnectionError", "ConnectionError", "ConnectionError"]);
      assert.equal(t.session.pendingActions, 0);
      assert.equal(t.ws.framesOf("_ACTION:NOTES").length, 1, "a waiting call is never sent later");
    }
  });

  it("rejects a maxInFlight below 1", () => {
    assert.throws(() => new Session("ws://x", { WebSocket: fakeWebSocketClass(), maxInFlight: 0 }), RangeError);
  });

  it("a burst of 600 actions settles against a server that answers each, never over 32 unanswered", async () => {
    const t = synced();
    // The server handles one frame per turn, in order, like a connection
    // reading at its own pace; some actions fail, their _ERROR notice going
    // before or after the _ACTION_RESULT.
    const unanswered = [];
    let most = 0;
    t.ws.onSent = (text) => {
      const { type, data } = JSON.parse(text);
      if (!type.startsWith("_ACTION:")) return;
      unanswered.push(data);
      most = Math.max(most, unanswered.length);
      setImmediate(answerOne);
    };
    const answerOne = () => {
      const { $id: id, n } = unanswered.shift();
      const notice = { event: "_ACTION:NOTES", message: `failed ${n}`, errors: [], id };
      if (n % 7 === 0) t.ws.receive("_ERROR", notice);
      t.ws.receive("_ACTION_RESULT:NOTES", n % 7 && n % 11 ? { id, ok: true, result: n * 2 } : { id, ok: false, error: { message: `failed ${n}` } });
      if (n % 11 === 0 && n % 7 !== 0) t.ws.receive("_ERROR", notice);
    };

    const burst = Array.from({ length: 600 }, (_, n) => t.store.action("DOUBLE", { n }));
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("the burst did not settle")), 5000));
    const outcomes = await Promise.race([Promise.allSettled(burst), timeout]);

    assert.equal(outcomes.length, 600);
    outcomes.forEach((o, n) => {
      if (n % 7 && n % 11) assert.deepEqual(o, { status: "fulfilled", value: n * 2 });
      else assert.equal(o.reason.message, `failed ${n}`, `call ${n}`);
    });
    assert.equal(most, 32, "the default maxInFlight");
    assert.equal(t.ws.framesOf("_ACTION:NOTES").length, 600, "each sent once");
    assert.equal(t.session.pendingActions, 0);
  });
});
