// Protocol 2, one write in flight: local edits are transformed past every
// server commit (so they stay on the item they were made on), acknowledged by
// the one commit frame every subscriber gets, and after a reconnect sent again
// only once the resume has shown they were not committed.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { makeSession } from "./helpers.js";

const EPOCH = "e1";
const card = (text) => ({ text, votes: 0 });
const BOARD = { title: "T", cards: [card("a"), card("b"), card("c")] };

/** A protocol-2 session whose BOARD store holds `state` at version `v`. */
function board({ state = BOARD, v = 5, options = {} } = {}) {
  const t = makeSession(options, { open: false });
  t.store = t.session.store("BOARD", {});
  t.ws.open();
  t.ws.hello();
  t.ws.receive("_SET:BOARD", state, { v, epoch: EPOCH });
  t.writes = () => t.ws.framesOf("_PATCH:BOARD");
  t.server = (ops, v, extra = {}) => t.ws.receive("_PATCH:BOARD", ops, { v, ...extra });
  t.texts = () => t.store.getState().cards.map((c) => c.text);
  t.reconnect = () => {
    t.ws.drop();
    t.clock.runNext();
    t.ws.open();
  };
  return t;
}

describe("protocol 2: edits follow their item across server commits", () => {
  it("an insert before the card being edited: the write in flight moves with the card", () => {
    const t = board();
    t.store.set("/cards/1/text", "B");
    t.server([{ op: "add", path: "/cards/0", value: card("new") }], 6);
    assert.deepEqual(t.texts(), ["new", "a", "B", "c"]);
    // The server transforms the write the same way; its ack confirms it.
    t.server([{ op: "replace", path: "/cards/2/text", value: "B" }], 7, { ack: t.writes()[0].$id });
    assert.deepEqual(t.store.confirmedState.cards.map((c) => c.text), ["new", "a", "B", "c"]);
    assert.equal(t.store.pending, 0);
    assert.deepEqual(t.calls.dropped, []);
  });

  it("a removal before it: the edit moves down; an edit of the removed card is dropped as a conflict", () => {
    const t = board();
    t.store.set("/cards/2/text", "C");
    t.server([{ op: "remove", path: "/cards/0" }], 6);
    assert.deepEqual(t.texts(), ["b", "C"]);
    const u = board();
    u.store.set("/cards/0/votes", 1);
    u.server([{ op: "remove", path: "/cards/0" }], 6);
    assert.deepEqual(u.texts(), ["b", "c"]);
    assert.deepEqual(u.calls.dropped.map((d) => [d.reason, d.ops]), [["conflict", [{ op: "replace", path: "/cards/0/votes", value: 1 }]]]);
  });

  it("edits waiting behind the write in flight are moved past the commit as carried past that write", () => {
    const t = board();
    t.store.patch([{ op: "add", path: "/cards/0", value: card("mine") }]); // in flight
    t.store.set("/cards/3/votes", 1); // card c, behind it
    assert.equal(t.writes().length, 1);
    // Another client's write, committed first: removes card a.
    t.server([{ op: "remove", path: "/cards/0" }], 6, { ack: "someone-else-1" });
    assert.deepEqual(t.texts(), ["mine", "b", "c"]);
    assert.deepEqual(t.store.getState().cards[2], { text: "c", votes: 1 });
    t.server([{ op: "add", path: "/cards/0", value: card("mine") }], 7, { ack: t.writes()[0].$id });
    const [, next] = t.writes();
    assert.deepEqual([next.data, next.v, next.epoch], [[{ op: "replace", path: "/cards/2/votes", value: 1 }], 7, EPOCH]);
  });

  it("a write of the same field keeps the local value, as the server will (the later write wins)", () => {
    const t = board();
    t.store.set("/title", "mine");
    t.server([{ op: "replace", path: "/title", value: "theirs" }], 6);
    assert.equal(t.store.getState().title, "mine");
    assert.equal(t.store.confirmedState.title, "theirs");
  });
});

describe("protocol 2: acknowledgements", () => {
  it("the ack's dropped ops are reported as conflicts; the ops it carries are confirmed", () => {
    const t = board();
    t.store.patch([
      { op: "replace", path: "/cards/0/text", value: "A" },
      { op: "replace", path: "/title", value: "mine" },
    ]);
    const [w] = t.writes();
    t.server([{ op: "replace", path: "/title", value: "mine" }], 6, { ack: w.$id, dropped: [0] });
    assert.deepEqual(t.calls.dropped, [{ key: "BOARD", ops: [{ op: "replace", path: "/cards/0/text", value: "A" }], reason: "conflict", error: undefined }]);
    assert.deepEqual(t.store.getState(), { ...BOARD, title: "mine" });
    assert.equal(t.store.getState(), t.store.confirmedState);
  });

  it("another client's ack is an ordinary commit", () => {
    const t = board();
    t.store.set("/cards/2/text", "C");
    t.server([{ op: "add", path: "/cards/1", value: card("x") }], 6, { ack: "other-page-3" });
    assert.equal(t.store.pending, 1);
    assert.deepEqual(t.texts(), ["a", "x", "b", "C"]);
  });

  it("an ack while a _SET is awaited reports its dropped ops at once, and nothing is resent after the _SET", () => {
    const t = board();
    t.store.patch([{ op: "remove", path: "/cards/2" }]);
    const [w] = t.writes();
    const warn = console.warn;
    console.warn = () => {};
    try {
      t.server([], 8); // a gap: _GET
    } finally {
      console.warn = warn;
    }
    t.server([], 9, { ack: w.$id, dropped: [0] });
    assert.equal(t.calls.dropped.length, 1);
    t.ws.receive("_SET:BOARD", { title: "T", cards: [card("a")] }, { v: 9, epoch: EPOCH });
    assert.deepEqual(t.texts(), ["a"]);
    assert.equal(t.store.pending, 0);
    t.store.set("/title", "next");
    assert.deepEqual(t.writes().map((f) => f.v), [5, 9]);
  });
});

describe("protocol 2: reconnecting with a write in flight", () => {
  it("the resume brings our own ack: the write is done and not sent again; the edits made offline go after", () => {
    const t = board();
    t.store.set("/cards/0/text", "A");
    const [w] = t.writes();
    t.ws.drop();
    t.store.set("/cards/2/votes", 3); // offline, card c
    t.clock.runNext();
    t.ws.open();
    assert.deepEqual(t.ws.frames[0].data.versions, { BOARD: { epoch: EPOCH, v: 5 } });
    t.ws.hello();
    // Resume: a commit of someone else's, then ours (committed before the drop).
    t.server([{ op: "add", path: "/cards/0", value: card("z") }], 6);
    t.server([{ op: "replace", path: "/cards/1/text", value: "A" }], 7, { ack: w.$id });
    assert.equal(t.store.pendingEdits, 1);
    t.ws.hello(); // the answer to the second _HELLO: the resume is in
    const sent = t.writes(); // on this connection
    assert.equal(sent.length, 1, "the acknowledged write is not sent again");
    assert.deepEqual([sent[0].data, sent[0].v], [[{ op: "replace", path: "/cards/3/votes", value: 3 }], 7]);
    assert.deepEqual(t.texts(), ["z", "A", "b", "c"]);
    assert.equal(t.store.getState().cards[3].votes, 3);
  });

  it("with user sessions the second _HELLO follows _USER_SESSION, and the write waits for its answer", () => {
    const t = board({ options: { userId: "u", sessionId: "s" } });
    t.store.set("/title", "x");
    t.reconnect();
    t.ws.receive("_REQUEST_USER_SESSION", null);
    t.ws.hello();
    assert.deepEqual(t.ws.frames.map((f) => f.type), ["_HELLO", "_USER_SESSION", "_HELLO"]);
    t.ws.hello();
    assert.deepEqual(t.ws.frames.map((f) => f.type), ["_HELLO", "_USER_SESSION", "_HELLO", "_PATCH:BOARD"]);
  });

  it("no second _HELLO when nothing waits to be sent", () => {
    const t = board();
    t.reconnect();
    t.ws.hello();
    assert.deepEqual(t.ws.frames.map((f) => f.type), ["_HELLO"]);
    t.store.set("/title", "x");
    assert.equal(t.writes().length, 1, "an edit made after the answer goes at once");
  });

  it("a _SET during the resume (another epoch): the held write goes as it applies now, on the new version", () => {
    const t = board();
    t.store.patch([
      { op: "replace", path: "/title", value: "mine" },
      { op: "replace", path: "/cards/2/text", value: "C" },
    ]);
    const [w] = t.writes();
    t.reconnect();
    t.ws.hello();
    t.ws.receive("_SET:BOARD", { title: "T", cards: [card("a")] }, { v: 1, epoch: "e2" });
    assert.deepEqual(t.calls.dropped.map((d) => d.ops), [[{ op: "replace", path: "/cards/2/text", value: "C" }]]);
    t.ws.hello();
    const [again] = t.writes();
    assert.deepEqual(again, { type: "_PATCH:BOARD", data: [{ op: "replace", path: "/title", value: "mine" }], v: 1, epoch: "e2", $id: w.$id });
    // The ack's dropped indexes are those of the frame sent again.
    t.server([], 2, { ack: w.$id, dropped: [0] });
    assert.equal(t.calls.dropped.length, 2);
    assert.equal(t.store.getState().title, "T");
  });

  it("a rejected write in flight is rolled back and the next edit goes at once", () => {
    const t = board();
    t.store.set("/cards/0/votes", -1);
    t.store.set("/cards/1/votes", 1);
    const [bad] = t.writes();
    t.ws.receive("_ERROR", { event: "_PATCH:BOARD", message: "refused", id: bad.$id });
    assert.deepEqual(t.calls.dropped.map((d) => d.reason), ["rejected"]);
    const [, next] = t.writes();
    assert.deepEqual([next.data, next.v], [[{ op: "replace", path: "/cards/1/votes", value: 1 }], 5]);
    assert.deepEqual(t.store.getState().cards.map((c) => c.votes), [0, 1, 0]);
  });
});
