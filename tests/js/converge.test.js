// Concurrent edits converge: clients edit one list at once, offline too, with
// frames delivered in random order and connections lost at random, against a
// model of the server (model_server.js) that transforms writes as the real one.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyPatch } from "../../ws_sync/static/ws-sync.js";
import { ModelClient, ModelServer, prng, settle } from "./model_server.js";

const card = (id) => ({ id, text: `t:${id}:0`, votes: 0, tags: [] });

const ALL_EDITS = ["insert", "append", "remove", "move", "text", "vote", "tag", "title", "two"];

/** One random local edit of `kinds`, made on what `client` sees. */
function randomEdit(client, random, ids, kinds) {
  const { store } = client;
  const { cards } = store.getState();
  const n = cards.length;
  const i = random.int(Math.max(n, 1));
  const kind = random.pick(n === 0 ? ["insert", "title"] : kinds);
  switch (kind) {
    case "insert":
      return store.patch([{ op: "add", path: `/cards/${random.int(n + 1)}`, value: card(`c${ids.next++}`) }]);
    case "append":
      return store.patch([{ op: "add", path: "/cards/-", value: card(`c${ids.next++}`) }]);
    case "remove":
      return store.patch([{ op: "remove", path: `/cards/${i}` }]);
    case "move":
      return store.patch([{ op: "move", from: `/cards/${i}`, path: `/cards/${random.int(n)}` }]);
    case "text": // names the card it is meant for: see misplacedTexts
      return store.set(`/cards/${i}/text`, `t:${cards[i].id}:${ids.next++}`);
    case "vote":
      return store.set(`/cards/${i}/votes`, cards[i].votes + 1);
    case "tag":
      return store.update((s) => ({ ...s, cards: s.cards.map((c, k) => (k === i ? { ...c, tags: [...c.tags, client.name] } : c)) }));
    case "title":
      return store.set("/title", `${client.name}${ids.next++}`);
    case "two": {
      // one edit of two ops: remove a card, then edit another
      const rest = cards.filter((_, k) => k !== i);
      const ops = [{ op: "remove", path: `/cards/${i}` }];
      const j = random.int(rest.length);
      if (rest.length > 0) ops.push({ op: "replace", path: `/cards/${j}/text`, value: `t:${rest[j].id}:${ids.next++}` });
      return store.patch(ops);
    }
  }
}

/**
 * The text edits of an acknowledged commit that landed on another card than
 * the one they were made on: a text names its card's id (`t:<id>:<n>`), and
 * each op is checked on the document as the commit's earlier ops left it.
 */
function misplacedTexts(before, frame) {
  if (frame.ack === undefined) return [];
  const out = [];
  let doc = before;
  for (const op of frame.data) {
    doc = applyPatch(doc, [op]);
    const m = /^\/cards\/(\d+)\/text$/.exec(op.path);
    if (m === null) continue;
    const card = doc.cards[Number(m[1])];
    if (op.value.split(":")[1] !== card.id) out.push(`${op.value} landed on ${card.id}`);
  }
  return out;
}

function run(seed, kinds = ALL_EDITS) {
  const random = prng(seed);
  const ids = { next: 100 };
  const initial = { title: "", cards: [card("c1"), card("c2"), card("c3")] };
  const server = new ModelServer("BOARD", initial);
  const misplaced = [];
  let texts = 0;
  server.onCommit = (doc, frame, before) => {
    texts += frame.ack === undefined ? 0 : frame.data.filter((op) => op.path.endsWith("/text")).length;
    misplaced.push(...misplacedTexts(before, frame));
  };
  const clients = ["A", "B", "C"].slice(0, 2 + random.int(2)).map((name) => new ModelClient(server, name, {}));
  for (const c of clients) c.connect();
  settle(clients, random);
  for (let step = 0; step < 60; step++) {
    const r = random();
    const client = random.pick(clients);
    if (r < 0.35) randomEdit(client, random, ids, kinds);
    else if (r < 0.4) client.online ? client.drop() : client.connect();
    else if (r < 0.45) server.change([{ op: "add", path: `/cards/${random.int(server.doc.cards.length + 1)}`, value: card(`s${ids.next++}`) }]);
    else {
      const ready = clients.flatMap((c) => c.ready().map((d) => [c, d]));
      if (ready.length > 0) {
        const [c, d] = random.pick(ready);
        c.deliver(d);
      }
    }
  }
  for (const c of clients) c.connect();
  settle(clients, random);
  return { server, clients, misplaced, texts };
}

describe("concurrent edits converge", () => {
  it("200 seeded runs: at quiescence every client sees the server's document", () => {
    let commits = 0;
    let writes = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const { server, clients } = run(seed);
      for (const c of clients) {
        const where = `seed ${seed}, client ${c.name}`;
        assert.deepEqual(c.store.getState(), server.doc, where);
        assert.deepEqual(c.store.confirmedState, server.doc, where);
        assert.equal(c.store.version, server.version, where);
        assert.equal(c.store.pending, 0, where);
      }
      commits += server.version;
      writes += server.committedIds.size;
    }
    assert.ok(writes > 1000, `the runs commit client writes (${writes} of ${commits} commits)`);
  });

});

/** Over 200 seeded runs of `kinds` of edits, the acknowledged text edits that landed on another card. */
function misplacedOver200(kinds) {
  let texts = 0;
  const misplaced = [];
  for (let seed = 1; seed <= 200; seed++) {
    const r = run(seed, kinds);
    texts += r.texts;
    misplaced.push(...r.misplaced.map((m) => `seed ${seed}: ${m}`));
  }
  assert.ok(texts > 300, `the runs commit text edits (${texts})`);
  return misplaced;
}

describe("concurrent edits keep their intent", () => {
  // Cards are inserted at an index (not "-") and never moved.
  const positional = ["insert", "remove", "text", "vote", "tag", "title", "two"];

  it("200 seeded runs of inserts, removes and edits: every acknowledged text edit is on the card it was made on", () => {
    assert.deepEqual(misplacedOver200(positional), []);
  });

  it("with moves too", () => {
    assert.deepEqual(misplacedOver200([...positional, "move"]), []);
  });

  it("with appends (\"-\") too", () => {
    assert.deepEqual(misplacedOver200([...positional, "append"]), []);
  });

  it("with every kind of edit at once", () => {
    assert.deepEqual(misplacedOver200(ALL_EDITS), []);
  });
});

describe("an edit made offline", () => {
  it("lands on the card it was made on, though another client removed a card before it meanwhile", () => {
    const random = prng(1);
    const server = new ModelServer("BOARD", { title: "", cards: [card("c1"), card("c2"), card("c3")] });
    const [a, b] = [new ModelClient(server, "A", {}), new ModelClient(server, "B", {})];
    a.connect();
    b.connect();
    settle([a, b], random);
    a.drop();
    a.store.set("/cards/2/text", "t:c3:offline"); // card #2 is c3
    b.store.patch([{ op: "remove", path: "/cards/0" }]);
    settle([a, b], random);
    assert.deepEqual(server.doc.cards.map((c) => c.id), ["c2", "c3"]);
    a.connect();
    settle([a, b], random);
    assert.deepEqual(server.doc.cards.map((c) => [c.id, c.text]), [["c2", "t:c2:0"], ["c3", "t:c3:offline"]]);
    for (const c of [a, b]) assert.deepEqual(c.store.getState(), server.doc);
    assert.deepEqual(a.dropped, []);
  });

  it("that was in flight when the connection dropped is committed once, whether or not it got through", () => {
    for (const delivered of [false, true]) {
      const random = prng(2);
      const server = new ModelServer("BOARD", { title: "", cards: [card("c1"), card("c2")] });
      const a = new ModelClient(server, "A", {});
      a.connect();
      settle([a], random);
      a.store.set("/cards/1/votes", 1);
      if (delivered) a.deliver("up"); // committed; its ack is lost with the connection
      a.drop();
      server.change([{ op: "add", path: "/cards/0", value: card("s1") }]);
      a.connect();
      settle([a], random);
      assert.equal(server.committedIds.size, 1, `delivered: ${delivered}`);
      assert.deepEqual(server.doc.cards.map((c) => [c.id, c.votes]), [["s1", 0], ["c1", 0], ["c2", 1]]);
      assert.deepEqual(a.store.getState(), server.doc);
    }
  });
});

