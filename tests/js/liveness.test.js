// Noticing a dead connection (_PING/_PONG), following the browser's
// online/offline events, retryNow(), a tab taken over, and running tasks
// shown as running across a reconnect.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { makeSession } from "./helpers.js";

function versioned(options = {}) {
  const t = makeSession(options);
  t.store = t.session.store("NOTES", {});
  t.ws.hello();
  t.ws.receive("_SET:NOTES", { title: "T" }, { v: 1, epoch: "e1" });
  return t;
}

const pings = (ws) => ws.framesOf("_PING");

describe("liveness", () => {
  it("pings after pingInterval of silence; a frame back keeps the connection", () => {
    const t = versioned({ pingInterval: 10_000, pingTimeout: 5_000 });
    t.clock.advance(9_999);
    assert.deepEqual(pings(t.ws), []);
    t.clock.advance(1);
    assert.deepEqual(pings(t.ws), [{ type: "_PING", data: 1 }]);
    t.ws.receive("_PONG", 1);
    t.clock.advance(5_000);
    assert.equal(t.session.state, "open");
    assert.equal(t.WebSocket.instances.length, 1);
  });

  it("any frame counts as life: a busy connection is not pinged", () => {
    const t = versioned({ pingInterval: 10_000 });
    for (let i = 0; i < 5; i++) {
      t.clock.advance(9_000);
      t.ws.receive("_TOAST", { type: "info", message: "tick" });
    }
    assert.deepEqual(pings(t.ws), []);
  });

  it("no frame within pingTimeout after a ping: the connection is closed and replaced", () => {
    const t = versioned({ pingInterval: 10_000, pingTimeout: 10_000 });
    const dead = t.ws;
    t.clock.advance(20_000);
    assert.equal(pings(dead).length, 1);
    assert.equal(dead.closeCalls, 1);
    assert.equal(t.session.state, "reconnecting");
    t.clock.runNext(); // the backoff
    assert.equal(t.WebSocket.instances.length, 2);
    t.ws.open();
    t.ws.hello();
    assert.equal(t.session.state, "open");
  });

  it("a protocol-1 server is not pinged (it would answer _ERROR)", () => {
    const t = makeSession({ pingInterval: 1_000 });
    t.session.store("NOTES", {});
    t.ws.receive("_SET:NOTES", {}); // no version: protocol 1
    t.clock.advance(60_000);
    assert.deepEqual(pings(t.ws), []);
    assert.equal(t.clock.pending, 0);
  });

  it("pingInterval: null turns pinging off", () => {
    const t = versioned({ pingInterval: null });
    assert.equal(t.clock.pending, 0);
  });
});

describe("online and offline", () => {
  it("offline closes the socket and stops retrying; online reconnects at once", () => {
    const window = new EventTarget();
    const t = versioned({ window });
    const ws = t.ws;
    window.dispatchEvent(new Event("offline"));
    assert.equal(t.session.state, "offline");
    assert.equal(ws.closeCalls, 1);
    assert.equal(t.clock.pending, 0, "no retry while offline");
    window.dispatchEvent(new Event("online"));
    assert.equal(t.WebSocket.instances.length, 2, "no backoff wait");
    assert.equal(t.session.state, "reconnecting");
    t.ws.open();
    assert.equal(t.session.state, "open");
  });

  it("offline during the backoff cancels the retry", () => {
    const window = new EventTarget();
    const t = versioned({ window });
    t.ws.drop();
    assert.equal(t.clock.pending, 1);
    window.dispatchEvent(new Event("offline"));
    assert.equal(t.clock.pending, 0);
    assert.equal(t.session.state, "offline");
  });

  it("events are ignored after close(), and the listeners removed", () => {
    const window = new EventTarget();
    const t = versioned({ window });
    t.session.close();
    window.dispatchEvent(new Event("offline"));
    window.dispatchEvent(new Event("online"));
    assert.equal(t.session.state, "closed");
    assert.equal(t.WebSocket.instances.length, 1);
  });
});

describe("retryNow", () => {
  it("reconnects at once, skipping the backoff, and starts the backoff afresh", () => {
    const t = versioned({ initialDelay: 1000, random: () => 0 });
    t.ws.drop();
    t.clock.runNext();
    t.ws.drop(); // the first retry failed: the next waits 2 s
    assert.equal(t.clock.delays.at(-1), 2000);
    t.session.retryNow();
    assert.equal(t.WebSocket.instances.length, 3);
    assert.equal(t.clock.pending, 0, "the scheduled retry is cancelled");
    t.ws.drop();
    assert.equal(t.clock.delays.at(-1), 1000);
  });

  it("is a no-op while connected", () => {
    const t = versioned();
    t.session.retryNow();
    assert.equal(t.WebSocket.instances.length, 1);
    assert.equal(t.session.state, "open");
  });
});

describe("a tab taken over", () => {
  it("is not shown live: state disconnected with the server's message, and no reconnect", async () => {
    const t = versioned();
    const p = t.store.action("A");
    t.ws.receive("_DISCONNECT", "taken over by another tab");
    assert.equal(t.session.state, "disconnected");
    assert.equal(t.session.isOpen, false);
    assert.equal(t.session.disconnectMessage, "taken over by another tab");
    assert.deepEqual(t.calls.disconnects, ["taken over by another tab"]);
    assert.equal(t.clock.pending, 0);
    await assert.rejects(p, { name: "ConnectionError" });
    await assert.rejects(t.store.action("B"), { name: "ConnectionError" }, "no queue: nothing would send it");
    t.session.retryNow(); // the user takes it back
    assert.equal(t.WebSocket.instances.length, 2);
    assert.equal(t.session.disconnectMessage, null);
  });
});

describe("running tasks", () => {
  it("a page that connects while a task runs shows it running from the _TASK_PROGRESS after the state", () => {
    const t = makeSession();
    const store = t.session.store("NOTES", {});
    const seen = [];
    store.subscribeTasks((type, task) => seen.push([type, task.running, task.progress]));
    assert.equal(store.task("IMPORT").running, false);
    t.ws.hello();
    t.ws.receive("_SET:NOTES", { title: "T" }, { v: 3, epoch: "e1" });
    t.ws.receive("_TASK_PROGRESS:NOTES", { type: "IMPORT", value: 40 });
    assert.deepEqual(store.task("IMPORT"), { running: true, progress: 40 });
    t.ws.receive("_TASK_DONE:NOTES", { type: "IMPORT", status: "completed", result: null });
    assert.deepEqual(seen, [["IMPORT", true, 40], ["IMPORT", false, 40]]);
  });

  it("stays running across a reconnect: no idle flash before the resumed progress", () => {
    const t = versioned();
    const seen = [];
    t.store.startTask("IMPORT");
    t.ws.receive("_TASK_PROGRESS:NOTES", { type: "IMPORT", value: 10 });
    t.store.subscribeTasks((type, task) => seen.push(task.running));
    t.ws.drop();
    assert.equal(t.store.task("IMPORT").running, true);
    t.clock.runNext();
    t.ws.open();
    t.ws.hello();
    t.ws.receive("_TASK_PROGRESS:NOTES", { type: "IMPORT", value: 20 });
    assert.deepEqual(t.store.task("IMPORT"), { running: true, progress: 20 });
    assert.deepEqual(seen, [true], "never idle in between");
  });

  it("a refused start is not running", async () => {
    const t = versioned();
    const { done } = t.store.startTask("IMPORT");
    const id = t.ws.framesOf("_TASK_START:NOTES")[0].data.$id;
    assert.equal(t.store.task("IMPORT").running, true);
    t.ws.receive("_ERROR", { event: "_TASK_START:NOTES", message: "already running", id });
    await assert.rejects(done);
    assert.equal(t.store.task("IMPORT").running, false);
  });
});
