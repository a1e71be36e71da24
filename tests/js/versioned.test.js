// Versioned sync (protocol 2): URL, _HELLO, versions on server frames, resume,
// pending writes with their acks and rejections, and the protocol-1 fallback.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Session } from "../../ws_sync/static/ws-sync.js";
import { FakeClock, fakeWebSocketClass, makeSession } from "./helpers.js";

const EPOCH = "9f1c2a7b";
const STATE = { title: "T", notes: ["a"], n: 1 };

/** A protocol-2 session whose NOTES store holds `state` at version `v`. */
function versioned({ state = STATE, v = 12, epoch = EPOCH, options = {} } = {}) {
  const t = makeSession(options, { open: false });
  t.store = t.session.store("NOTES", {});
  t.ws.open();
  t.ws.hello();
  t.ws.receive("_SET:NOTES", state, { v, epoch });
  t.patches = () => t.ws.framesOf("_PATCH:NOTES");
  t.reconnect = () => {
    t.ws.drop();
    t.clock.runNext();
    t.ws.open();
  };
  return t;
}

function quietly(fn) {
  const warn = console.warn;
  const warnings = [];
  console.warn = (...args) => warnings.push(args);
  try {
    fn();
  } finally {
    console.warn = warn;
  }
  return warnings;
}

const replaceTitle = (value) => [{ op: "replace", path: "/title", value }];

describe("protocol 2: the socket URL", () => {
  it("adds ws_sync=2 to the app's URL", () => {
    const t = makeSession({}, { open: false });
    assert.equal(t.ws.url, "ws://test/ws?ws_sync=2");
    assert.equal(t.session.url, "ws://test/ws", "the session keeps the app's URL");
  });

  it("keeps the app's path and query byte for byte, on wss:// too", () => {
    const WebSocket = fakeWebSocketClass();
    new Session("wss://example.org/app/ws?token=a%20b&x=1", { WebSocket }).connect();
    assert.equal(WebSocket.last.url, "wss://example.org/app/ws?token=a%20b&x=1&ws_sync=2");
  });

  it("replaces a ws_sync parameter the app already has", () => {
    const WebSocket = fakeWebSocketClass();
    new Session("ws://h/ws?ws_sync=1&a=b", { WebSocket }).connect();
    assert.equal(new URL(WebSocket.last.url).searchParams.get("ws_sync"), "2");
    assert.equal(new URL(WebSocket.last.url).searchParams.get("a"), "b");
  });

  it("resolves a relative URL against the page", () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, "location");
    globalThis.location = { href: "https://app.example/notes/page" };
    try {
      const WebSocket = fakeWebSocketClass();
      new Session("/ws", { WebSocket }).connect();
      assert.equal(WebSocket.last.url, "https://app.example/ws?ws_sync=2");
    } finally {
      if (saved) Object.defineProperty(globalThis, "location", saved);
      else delete globalThis.location;
    }
  });

  it("protocol: 1 uses the URL as given and sends no _HELLO", () => {
    const t = makeSession({ protocol: 1 });
    assert.equal(t.ws.url, "ws://test/ws");
    assert.deepEqual(t.ws.framesOf("_HELLO"), []);
    assert.equal(t.session.protocol, 1);
    assert.throws(() => new Session("ws://x", { protocol: 3 }), RangeError);
  });
});

describe("protocol 2: _HELLO", () => {
  it("is the first frame after open, listing no versions on the first connect", () => {
    const t = makeSession({ getOnConnect: true, onStateChange: (s) => s === "open" && t.session.send("APP", 1) }, { open: false });
    t.session.store("NOTES", {});
    t.ws.open();
    assert.deepEqual(t.ws.frames[0], { type: "_HELLO", data: { protocol: 2, versions: {} } });
    assert.deepEqual(
      t.ws.frames.map((f) => f.type),
      ["_HELLO", "APP", "_GET:NOTES"],
    );
    assert.equal(t.session.protocol, null, "not agreed before the answer");
    t.ws.hello();
    assert.equal(t.session.protocol, 2);
  });

  it("lists the confirmed version and epoch of every versioned store on reconnect", () => {
    const t = versioned();
    const other = t.session.store("OTHER", {});
    t.ws.receive("_SET:OTHER", { x: 1 }, { v: 3, epoch: "e2" });
    t.session.store("UNVERSIONED", {});
    t.ws.receive("_SET:UNVERSIONED", { y: 1 }); // this object is not versioned by the server
    t.session.store("NEVER", {}); // no server copy yet
    t.ws.receive("_PATCH:NOTES", replaceTitle("U"), { v: 13 });
    assert.equal(other.version, 3);
    t.reconnect();
    assert.deepEqual(t.ws.frames[0], {
      type: "_HELLO",
      data: { protocol: 2, versions: { NOTES: { epoch: EPOCH, v: 13 }, OTHER: { epoch: "e2", v: 3 } } },
    });
  });

  it("answers _REQUEST_USER_SESSION whether it comes before or after the _HELLO answer", () => {
    for (const order of [["request", "hello"], ["hello", "request"]]) {
      const t = makeSession({ userId: "u1", sessionId: "s1" });
      for (const step of order) {
        if (step === "hello") t.ws.hello();
        else t.ws.receive("_REQUEST_USER_SESSION", null);
      }
      assert.deepEqual(
        t.ws.frames.map((f) => f.type),
        ["_HELLO", "_USER_SESSION"],
        order.join(" then "),
      );
      assert.equal(t.session.protocol, 2);
    }
  });
});

describe("protocol 2: versioned server frames", () => {
  it("_SET sets the state, version and epoch", () => {
    const t = versioned();
    assert.deepEqual(t.store.getState(), STATE);
    assert.equal(t.store.version, 12);
    assert.equal(t.store.epoch, EPOCH);
    assert.equal(t.store.synced, true);
  });

  it("applies the patch for version n+1 and moves to it", () => {
    const t = versioned();
    let calls = 0;
    t.store.subscribe(() => calls++);
    t.ws.receive("_PATCH:NOTES", replaceTitle("U"), { v: 13 });
    t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/-", value: "b" }], { v: 14 });
    assert.deepEqual(t.store.getState(), { title: "U", notes: ["a", "b"], n: 1 });
    assert.equal(t.store.version, 14);
    assert.equal(calls, 2);
  });

  it("skips a patch it already has (v <= n), silently", () => {
    const t = versioned();
    const s0 = t.store.getState();
    let calls = 0;
    t.store.subscribe(() => calls++);
    const warnings = quietly(() => {
      t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/-", value: "dup" }], { v: 12 });
      t.ws.receive("_PATCH:NOTES", [{ op: "remove", path: "/missing" }], { v: 11 });
    });
    assert.equal(t.store.getState(), s0);
    assert.equal(t.store.version, 12);
    assert.equal(calls, 0);
    assert.deepEqual(warnings, []);
    assert.deepEqual(t.ws.framesOf("_GET:NOTES"), []);
  });

  it("a gap (v > n+1) asks for the whole state and ignores patches until the _SET", () => {
    const t = versioned();
    const s0 = t.store.getState();
    quietly(() => t.ws.receive("_PATCH:NOTES", replaceTitle("far"), { v: 14 }));
    assert.deepEqual(t.ws.framesOf("_GET:NOTES"), [{ type: "_GET:NOTES", data: {} }]);
    assert.equal(t.store.getState(), s0);
    assert.equal(t.store.version, 12);
    t.ws.receive("_PATCH:NOTES", replaceTitle("stale"), { v: 13 });
    t.ws.receive("_PATCH:NOTES", replaceTitle("stale"), { v: 15 });
    assert.equal(t.store.getState().title, "T", "ignored while resyncing");
    assert.equal(t.ws.framesOf("_GET:NOTES").length, 1, "one _GET, not one per patch");
    t.ws.receive("_SET:NOTES", { title: "fresh", notes: [], n: 2 }, { v: 15, epoch: EPOCH });
    t.ws.receive("_PATCH:NOTES", replaceTitle("next"), { v: 16 });
    assert.deepEqual(t.store.getState(), { title: "next", notes: [], n: 2 });
    assert.equal(t.store.version, 16);
  });

  it("a frame without v is applied as before, and the store is no longer versioned", () => {
    const t = versioned();
    t.ws.receive("_PATCH:NOTES", replaceTitle("plain"));
    assert.equal(t.store.getState().title, "plain");
    assert.equal(t.store.version, null);
    t.store.set("/n", 2);
    assert.deepEqual(t.patches().at(-1), { type: "_PATCH:NOTES", data: [{ op: "replace", path: "/n", value: 2 }] });
    assert.equal(t.store.pending, 0, "protocol 1 has no ack: sent is confirmed");
  });
});

describe("protocol 2: resume", () => {
  it("keeps the state and version across a disconnect and applies the missed patches", () => {
    const t = versioned();
    const s0 = t.store.getState();
    let calls = 0;
    t.store.subscribe(() => calls++);
    t.ws.drop();
    assert.equal(t.store.getState(), s0, "not cleared while offline");
    assert.equal(t.store.version, 12);
    assert.equal(t.store.synced, false);
    t.clock.runNext();
    t.ws.open();
    t.ws.hello();
    assert.equal(t.store.synced, true, "resumed: the server sends only what this copy misses");
    assert.equal(t.store.getState(), s0);
    t.ws.receive("_PATCH:NOTES", replaceTitle("missed 1"), { v: 13 });
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/n", value: 2 }], { v: 14 });
    assert.deepEqual(t.store.getState(), { title: "missed 1", notes: ["a"], n: 2 });
    assert.equal(t.store.version, 14);
    assert.equal(calls, 2);
    assert.deepEqual(t.ws.framesOf("_GET:NOTES"), []);
  });

  it("a resume _SET (new epoch) replaces the state, version and epoch", () => {
    const t = versioned();
    t.reconnect();
    t.ws.hello();
    t.ws.receive("_SET:NOTES", { title: "restarted", notes: [], n: 0 }, { v: 1, epoch: "e-new" });
    assert.deepEqual(t.store.getState(), { title: "restarted", notes: [], n: 0 });
    assert.equal(t.store.version, 1);
    assert.equal(t.store.epoch, "e-new");
    t.ws.receive("_PATCH:NOTES", replaceTitle("x"), { v: 2 });
    assert.equal(t.store.getState().title, "x");
  });
});

describe("protocol 2: local writes", () => {
  it("are visible at once, sent with v and $id, and confirmed by their ack", () => {
    const t = versioned();
    assert.equal(t.store.set("/title", "mine"), true);
    assert.equal(t.store.getState().title, "mine");
    assert.equal(t.store.confirmedState.title, "T");
    assert.equal(t.store.pending, 1);
    assert.equal(t.store.pendingEdits, 0, "sent");
    const [frame] = t.patches();
    assert.deepEqual(frame, { type: "_PATCH:NOTES", data: replaceTitle("mine"), v: 12, epoch: EPOCH, $id: frame.$id });
    assert.match(frame.$id, /^[0-9a-f]{12}-1$/);
    assert.ok(t.ws.sent.at(-1).startsWith('{"type":"_PATCH:NOTES","data":['), "type first, then data");

    // Another client's change lands under it; the pending write stays on top.
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/n", value: 5 }], { v: 13 });
    assert.deepEqual(t.store.getState(), { title: "mine", notes: ["a"], n: 5 });
    assert.deepEqual(t.store.confirmedState, { title: "T", notes: ["a"], n: 5 });

    // The ack carries the ops as the server applied them (here coerced).
    t.ws.receive("_PATCH:NOTES", replaceTitle("MINE"), { v: 14, ack: frame.$id });
    assert.equal(t.store.pending, 0);
    assert.deepEqual(t.store.getState(), { title: "MINE", notes: ["a"], n: 5 });
    assert.equal(t.store.getState(), t.store.confirmedState);
    assert.equal(t.store.version, 14);
  });

  it("name an appended item by its index, so an edit of it follows concurrent inserts", () => {
    const t = versioned();
    t.store.patch([{ op: "add", path: "/notes/-", value: "b" }, { op: "replace", path: "/notes/1", value: "B" }]);
    t.store.update((s) => ({ ...s, notes: [...s.notes, "c"] })); // diff appends with "-"
    assert.deepEqual(t.patches()[0].data, [
      { op: "add", path: "/notes/1", value: "b" },
      { op: "replace", path: "/notes/1", value: "B" },
    ]);
    // Another client inserted at the front meanwhile: the buffered append moves with it.
    t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/0", value: "z" }], { v: 13 });
    assert.deepEqual(t.store.getState().notes, ["z", "a", "B", "c"]);
    t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/2", value: "B" }], { v: 14, ack: t.patches()[0].$id });
    assert.deepEqual(t.patches()[1].data, [{ op: "add", path: "/notes/3", value: "c" }]);
  });

  it("an ack with an empty list (nothing applied) just confirms", () => {
    const t = versioned();
    t.store.set("/title", "T2");
    const { $id } = t.patches()[0];
    t.ws.receive("_PATCH:NOTES", [], { v: 13, ack: $id });
    assert.equal(t.store.pending, 0);
    assert.equal(t.store.getState().title, "T", "the server applied nothing");
    assert.equal(t.store.version, 13);
  });

  it("each write has its own $id, and ids differ between sessions (page loads)", () => {
    const t = versioned();
    t.store.set("/title", "1");
    t.ws.receive("_PATCH:NOTES", replaceTitle("1"), { v: 13, ack: t.patches()[0].$id });
    t.store.set("/title", "2");
    const [a, b] = t.patches().map((f) => f.$id);
    assert.notEqual(a, b);
    assert.equal(a.split("-")[0], b.split("-")[0], "one prefix per page");
    const u = versioned();
    u.store.set("/title", "1");
    assert.notEqual(u.patches()[0].$id.split("-")[0], a.split("-")[0]);
  });

  it("one write in flight: edits made meanwhile go as one write after its ack, on the version it brought", () => {
    const t = versioned();
    t.store.set("/title", "A");
    t.store.set("/notes/-", "b");
    t.store.set("/n", 2);
    assert.equal(t.patches().length, 1, "the second edit waits for the first one's ack");
    assert.deepEqual([t.store.pending, t.store.pendingEdits], [3, 2]);
    const [a] = t.patches();
    t.ws.receive("_PATCH:NOTES", replaceTitle("A"), { v: 13, ack: a.$id });
    const [, b] = t.patches();
    assert.deepEqual(b, {
      type: "_PATCH:NOTES",
      data: [{ op: "add", path: "/notes/1", value: "b" }, { op: "replace", path: "/n", value: 2 }], // "-" named by its index
      v: 13,
      epoch: EPOCH,
      $id: b.$id,
    });
    assert.deepEqual([t.store.pending, t.store.pendingEdits], [2, 0]);
    t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/1", value: "b" }, { op: "replace", path: "/n", value: 2 }], { v: 14, ack: b.$id });
    assert.equal(t.store.pending, 0);
    assert.equal(t.patches().length, 2);
    assert.deepEqual(t.store.getState(), { title: "A", notes: ["a", "b"], n: 2 });
  });

  it("a pending write that no longer applies after a server patch is dropped and reported", () => {
    const t = versioned({ state: { title: "T", notes: ["a", "b"] } });
    t.store.set("/notes/1", "B");
    t.ws.receive("_PATCH:NOTES", [{ op: "remove", path: "/notes/1" }], { v: 13 });
    assert.deepEqual(t.store.getState(), { title: "T", notes: ["a"] });
    assert.equal(t.calls.dropped.length, 1);
    assert.equal(t.calls.dropped[0].reason, "conflict");
    assert.equal(t.store.pending, 1, "still awaiting its ack");
    // The server drops it too; its ack reports nothing more.
    t.ws.receive("_PATCH:NOTES", [], { v: 14, ack: t.patches()[0].$id, dropped: [0] });
    assert.equal(t.store.pending, 0);
    assert.equal(t.calls.dropped.length, 1);
  });

  it("an ack for a version this copy already has confirms the write without applying it again", () => {
    const t = versioned();
    t.store.set("/notes/-", "b");
    const { $id } = t.patches()[0];
    t.ws.receive("_SET:NOTES", { title: "T", notes: ["a", "b"], n: 1 }, { v: 13, epoch: EPOCH });
    assert.deepEqual(t.store.getState().notes, ["a", "b", "b"], "still pending: its ack has not come");
    t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/1", value: "b" }], { v: 13, ack: $id });
    assert.deepEqual(t.store.getState().notes, ["a", "b"]);
    assert.equal(t.store.pending, 0);
  });

  it("an ack arriving while a _SET is awaited confirms the write when that _SET comes", () => {
    const t = versioned();
    t.store.set("/notes/-", "b");
    const { $id } = t.patches()[0];
    quietly(() => t.ws.receive("_PATCH:NOTES", replaceTitle("gap"), { v: 14 }));
    t.ws.receive("_PATCH:NOTES", [{ op: "add", path: "/notes/1", value: "b" }], { v: 15, ack: $id });
    assert.equal(t.store.pending, 0, "acknowledged");
    assert.deepEqual(t.store.getState().notes, ["a", "b"], "still shown until the _SET");
    t.ws.receive("_SET:NOTES", { title: "gap", notes: ["a", "b"], n: 1 }, { v: 15, epoch: EPOCH });
    assert.deepEqual(t.store.getState(), { title: "gap", notes: ["a", "b"], n: 1 });
    t.reconnect();
    t.ws.hello();
    assert.deepEqual(t.patches(), [], "an acknowledged write is never resent");
  });

  it("writes made before the _HELLO answer wait for it, and for the end of the resume", () => {
    const t = versioned();
    t.reconnect();
    t.store.set("/title", "early");
    assert.deepEqual(t.patches(), []);
    t.ws.hello();
    assert.deepEqual(t.patches(), []);
    assert.deepEqual(t.ws.frames.map((f) => f.type), ["_HELLO", "_HELLO"], "a second _HELLO, answered after the resume frames");
    assert.deepEqual(t.ws.frames[1].data, { protocol: 2, versions: {} });
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/n", value: 2 }], { v: 13 });
    t.ws.hello();
    assert.deepEqual(t.patches().map((f) => [f.data, f.v]), [[replaceTitle("early"), 13]]);
  });

  it("a store without a confirmed copy keeps its writes until its first _SET", () => {
    const t = makeSession();
    t.ws.hello();
    const store = t.session.store("NEW", { title: "" }); // sends _GET
    store.set("/title", "early");
    assert.deepEqual(t.ws.framesOf("_PATCH:NEW"), []);
    t.ws.receive("_SET:NEW", { title: "server" }, { v: 4, epoch: EPOCH });
    assert.equal(store.getState().title, "early");
    const [frame] = t.ws.framesOf("_PATCH:NEW");
    assert.deepEqual([frame.data, frame.v], [replaceTitle("early"), 4]);
  });
});

describe("protocol 2: rejected writes", () => {
  it("an _ERROR naming a write's $id rolls it back; later writes stay", () => {
    const t = versioned();
    t.store.set("/n", -1);
    t.store.set("/title", "ok");
    const [bad] = t.patches().map((f) => f.$id);
    const err = { event: "_PATCH:NOTES", message: "_PATCH rejected: 1 error(s)", errors: [{ op: 0, path: "/n" }], id: bad };
    let calls = 0;
    t.store.subscribe(() => calls++);
    t.ws.receive("_ERROR", err);
    assert.deepEqual(t.store.getState(), { title: "ok", notes: ["a"], n: 1 });
    assert.equal(calls, 1);
    assert.equal(t.store.pending, 1);
    assert.deepEqual(t.calls.errors, [err], "still reported to onError");
    assert.deepEqual(t.calls.dropped, [{ key: "NOTES", ops: [{ op: "replace", path: "/n", value: -1 }], reason: "rejected", error: err }]);
    // The next edit goes at once; the server puts the copy back in step, then acknowledges it.
    const [, good] = t.patches().map((f) => f.$id);
    assert.deepEqual(t.patches()[1].data, replaceTitle("ok"));
    t.ws.receive("_SET:NOTES", STATE, { v: 12, epoch: EPOCH });
    assert.equal(t.store.getState().title, "ok");
    t.ws.receive("_PATCH:NOTES", replaceTitle("ok"), { v: 13, ack: good });
    assert.equal(t.store.pending, 0);
    assert.deepEqual(t.store.getState(), { title: "ok", notes: ["a"], n: 1 });
  });
});

describe("protocol 2: offline writes", () => {
  it("writes made offline are sent after the resume as one write, on the resumed version", () => {
    const t = versioned();
    t.ws.drop();
    t.store.set("/title", "offline");
    t.store.set("/notes/-", "b");
    assert.deepEqual(t.store.getState(), { title: "offline", notes: ["a", "b"], n: 1 });
    assert.equal(t.store.pendingEdits, 2);
    t.clock.runNext();
    t.ws.open();
    assert.deepEqual(t.patches(), [], "not before the _HELLO answer");
    t.ws.hello();
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/n", value: 2 }], { v: 13 });
    assert.deepEqual(t.store.getState(), { title: "offline", notes: ["a", "b"], n: 2 });
    assert.deepEqual(t.patches(), [], "not before the resume is in");
    t.ws.hello();
    const [sent] = t.patches();
    assert.deepEqual([sent.data, sent.v, sent.epoch], [[...replaceTitle("offline"), { op: "add", path: "/notes/1", value: "b" }], 13, EPOCH]);
    assert.deepEqual([t.store.pendingEdits, t.store.pending], [0, 2]);
    t.ws.receive("_PATCH:NOTES", [...replaceTitle("offline"), { op: "add", path: "/notes/1", value: "b" }], { v: 14, ack: sent.$id });
    assert.equal(t.store.pending, 0);
    assert.deepEqual(t.store.getState(), { title: "offline", notes: ["a", "b"], n: 2 });
  });

  it("a write sent again after its commit left the server's history is acknowledged by the _SET that holds it", () => {
    const t = versioned();
    t.store.set("/title", "mine");
    const { $id } = t.patches()[0];
    t.reconnect();
    t.ws.hello();
    t.ws.receive("_SET:NOTES", { ...STATE, title: "theirs", n: 3 }, { v: 40, epoch: EPOCH }); // too far behind: the whole state
    t.ws.hello();
    const [again] = t.patches(); // on this connection
    assert.equal(again.$id, $id, "sent again, as it applies now");
    t.store.set("/n", 4); // waits for the write in flight
    t.ws.receive("_SET:NOTES", { ...STATE, title: "mine", n: 3 }, { v: 40, epoch: EPOCH, ack: $id });
    assert.deepEqual(t.store.confirmedState, { ...STATE, title: "mine", n: 3 });
    const next = t.patches().at(-1);
    assert.notEqual(next.$id, $id, "the write is done: the next one goes");
    assert.deepEqual([next.data, next.v], [[{ op: "replace", path: "/n", value: 4 }], 40]);
    assert.deepEqual(t.store.getState(), { ...STATE, title: "mine", n: 4 });
  });

  it("a write sent but not acknowledged when the connection dropped is resent as it was, once the resume is in", () => {
    const t = versioned();
    t.store.set("/title", "in flight");
    const first = t.patches()[0];
    t.reconnect();
    t.ws.hello();
    assert.deepEqual(t.patches(), [], "its ack may be among the resume frames");
    assert.equal(t.store.pendingEdits, 1);
    t.ws.receive("_PATCH:NOTES", [{ op: "replace", path: "/n", value: 2 }], { v: 13 });
    t.ws.hello();
    const [again] = t.patches();
    assert.deepEqual(again, first, "same $id, ops, v and epoch: the server transforms it past version 13");
    assert.deepEqual(t.store.getState(), { title: "in flight", notes: ["a"], n: 2 }, "still shown while pending");
    assert.equal(t.store.pendingEdits, 0);
  });

  it("offline writes on a resume _SET are re-applied by position on the new state, and what applies is sent", () => {
    const t = versioned({ state: { title: "T", notes: ["a", "b"] } });
    t.ws.drop();
    t.store.set("/title", "kept");
    t.store.set("/notes/1", "B");
    t.clock.runNext();
    t.ws.open();
    t.ws.hello();
    t.ws.receive("_SET:NOTES", { title: "T", notes: [] }, { v: 1, epoch: "e-new" });
    assert.deepEqual([t.store.version, t.store.epoch], [1, "e-new"]);
    assert.deepEqual(t.store.getState(), { title: "kept", notes: [] });
    assert.equal(t.calls.dropped.length, 1);
    assert.equal(t.calls.dropped[0].reason, "conflict");
    assert.equal(t.store.pending, 1);
    t.ws.hello();
    const [sent] = t.patches();
    assert.deepEqual([sent.data, sent.v, sent.epoch], [replaceTitle("kept"), 1, "e-new"]);
    t.ws.receive("_PATCH:NOTES", replaceTitle("kept"), { v: 2, ack: sent.$id });
    assert.equal(t.store.pending, 0);
    assert.equal(t.store.version, 2);
    assert.deepEqual(t.store.getState(), { title: "kept", notes: [] });
  });
});

describe("protocol 1 fallback", () => {
  it("a _SET without v before the _HELLO answer means protocol 1: writes go plain", () => {
    const t = makeSession({}, { open: false });
    const store = t.session.store("NOTES", { title: "" });
    t.ws.open();
    store.set("/title", "early");
    t.ws.receive("_SET:NOTES", { title: "server" });
    assert.equal(t.session.protocol, 1);
    assert.equal(store.version, null);
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES"), [{ type: "_PATCH:NOTES", data: replaceTitle("early") }]);
    store.set("/title", "later");
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES").at(-1), { type: "_PATCH:NOTES", data: replaceTitle("later") });
    assert.equal(store.pending, 0);
    // The old echo: only values validation changed come back, unversioned.
    t.ws.receive("_PATCH:NOTES", replaceTitle("LATER"));
    assert.equal(store.getState().title, "LATER");
  });

  it("an _ERROR for _HELLO means protocol 1, and is not reported", () => {
    const t = makeSession({}, { open: false });
    const store = t.session.store("NOTES", {});
    t.ws.open();
    t.ws.receive("_ERROR", { event: "_HELLO", message: "unknown event '_HELLO'", errors: [] });
    assert.equal(t.session.protocol, 1);
    assert.deepEqual(t.calls.errors, []);
    t.ws.receive("_SET:NOTES", { title: "server" }, { v: 3, epoch: EPOCH });
    assert.equal(store.version, null, "versions are ignored under protocol 1");
    store.set("/title", "x");
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES"), [{ type: "_PATCH:NOTES", data: replaceTitle("x") }]);
  });

  it("the frames of a protocol-1 server with user sessions: answered, no error reported", () => {
    const t = makeSession({ userId: "u1", sessionId: "s1" }, { open: false });
    const store = t.session.store("NOTES", {});
    t.ws.open();
    t.ws.receive("_REQUEST_USER_SESSION", null);
    t.ws.receive("_SET:NOTES", { title: "server" });
    t.ws.receive("_ERROR", { event: "_HELLO", message: "unknown event '_HELLO'", errors: [] });
    assert.deepEqual(t.ws.frames.map((f) => f.type), ["_HELLO", "_USER_SESSION"]);
    assert.deepEqual(t.calls.errors, []);
    assert.equal(t.session.protocol, 1);
    assert.equal(store.getState().title, "server");
  });

  it("a _HELLO answer for another protocol means protocol 1", () => {
    const t = makeSession();
    t.ws.receive("_HELLO", { protocol: 1 });
    assert.equal(t.session.protocol, 1);
  });

  it("a versioned store reconnecting to a protocol-1 server forgets its version and replays its writes on the _SET", () => {
    const t = versioned();
    t.store.set("/title", "in flight");
    t.ws.drop();
    t.store.set("/n", 2);
    t.clock.runNext();
    t.ws.open();
    t.ws.receive("_SET:NOTES", { title: "server", notes: [], n: 1 });
    assert.equal(t.store.version, null);
    assert.deepEqual(t.store.getState(), { title: "in flight", notes: [], n: 2 });
    assert.deepEqual(t.ws.framesOf("_PATCH:NOTES"), [
      { type: "_PATCH:NOTES", data: replaceTitle("in flight") },
      { type: "_PATCH:NOTES", data: [{ op: "replace", path: "/n", value: 2 }] },
    ]);
    assert.equal(t.store.pending, 0);
    t.reconnect();
    assert.deepEqual(t.ws.frames[0].data.versions, {}, "nothing to resume from");
  });

  it("an _ERROR for _HELLO on a protocol-2 connection is reported as usual", () => {
    const t = versioned();
    t.ws.receive("_ERROR", { event: "_HELLO", message: "odd", errors: [] });
    assert.equal(t.session.protocol, 2);
    assert.equal(t.calls.errors.length, 1);
  });
});

describe("protocol getter", () => {
  it("is null when not connected or not agreed, else the agreed protocol", () => {
    const clock = new FakeClock();
    const WebSocket = fakeWebSocketClass();
    const s = new Session("ws://x", { WebSocket, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout });
    assert.equal(s.protocol, null);
    s.connect();
    assert.equal(s.protocol, null);
    WebSocket.last.open();
    WebSocket.last.hello();
    assert.equal(s.protocol, 2);
    WebSocket.last.drop();
    assert.equal(s.protocol, null);
    s.close();
  });
});
