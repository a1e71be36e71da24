// The transform of concurrent JSON Patch ops: the table of cases shared with
// the server (tests/transform_cases.json, also run by tests/test_transform.py),
// and the committed steps it carries past the kept ops.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { applyPatch, past, transform } from "../../ws_sync/static/ws-sync.js";
import { listsOf } from "./model_server.js";

const CASES = JSON.parse(readFileSync(new URL("../transform_cases.json", import.meta.url), "utf8"));

const listOracle = listsOf;

const noLists = () => false;

describe("transform: the shared table", () => {
  for (const c of CASES) {
    it(c.name, () => {
      const r = transform(c.ops, c.committed, listOracle(c.doc));
      assert.deepEqual(r.ops, c.expected);
      assert.deepEqual(r.dropped, c.dropped);
      // The transformed ops apply after the committed ones.
      applyPatch(applyPatch(c.doc, c.committed), r.ops);
    });
  }

  it("covers every kind of committed op", () => {
    const kinds = new Set(CASES.flatMap((c) => c.committed.map((op) => op.op)));
    assert.deepEqual([...kinds].sort(), ["add", "copy", "move", "remove", "replace"]);
  });
});

describe("transform: the committed steps carried past the kept ops", () => {
  const doc = { items: ["a", "b", "c"], meta: { x: 1 } };
  const isList = listOracle(doc);

  it("shift by the kept ops, so that later ops can be carried past them", () => {
    const r = transform([{ op: "add", path: "/items/0", value: "mine" }], [{ op: "replace", path: "/items/1", value: "B" }], isList);
    assert.deepEqual(r.ops, [{ op: "add", path: "/items/0", value: "mine" }]);
    assert.deepEqual(r.committed, [{ op: "replace", path: "/items/2", value: "B" }]);
    // Together: the committed ops then the kept ones give the same document
    // as the kept ones then the carried committed ones.
    const a = applyPatch(applyPatch(doc, [{ op: "replace", path: "/items/1", value: "B" }]), r.ops);
    const b = applyPatch(applyPatch(doc, [{ op: "add", path: "/items/0", value: "mine" }]), r.committed);
    assert.deepEqual(a, b);
  });

  it("are the committed ops that change the document's shape: a move stays a move, a copy is an add, a test goes", () => {
    const r = transform(
      [],
      [
        { op: "move", from: "/items/0", path: "/items/2" },
        { op: "copy", from: "/items/0", path: "/items/1" },
        { op: "test", path: "/meta/x", value: 1 },
      ],
      isList,
    );
    assert.deepEqual(r.committed, [
      { op: "move", from: "/items/0", path: "/items/2" },
      { op: "add", path: "/items/1" },
    ]);
  });

  it("lose a step that a kept op overwrote", () => {
    // The client replaced /meta after the server wrote under it: the write under it is gone.
    const r = transform([{ op: "replace", path: "/meta", value: {} }], [{ op: "replace", path: "/meta/x", value: 2 }], isList);
    assert.deepEqual(r.ops, [{ op: "replace", path: "/meta", value: {} }]);
    assert.deepEqual(r.committed, []);
  });

  it("are carried past dropped ops too: the client had applied them", () => {
    const r = transform(
      [{ op: "replace", path: "/items/1", value: "X" }, { op: "add", path: "/items/0", value: "y" }],
      [{ op: "remove", path: "/items/1" }],
      isList,
    );
    assert.deepEqual(r.dropped, [0]);
    assert.deepEqual(r.committed, [{ op: "remove", path: "/items/2" }]);
  });

  it("are carried past each op where they stood when it applied", () => {
    // The second commit's insert at 0 meets the write's insert at 0 only
    // after the first commit's remove moved past it.
    const committed = [{ op: "remove", path: "/items/0" }, { op: "add", path: "/items/0", value: "s" }];
    const r = transform([{ op: "add", path: "/items/0", value: "x" }], committed, isList);
    assert.deepEqual(r.ops, [{ op: "add", path: "/items/1", value: "x" }]);
    assert.deepEqual(r.committed, [{ op: "remove", path: "/items/1" }, { op: "add", path: "/items/0", value: "s" }]);
    const a = applyPatch(applyPatch(doc, committed), r.ops);
    const b = applyPatch(applyPatch(doc, [{ op: "add", path: "/items/0", value: "x" }]), r.committed);
    assert.deepEqual(a, b);
  });

  it("can rebase ops made after the transformed ones, as one transform would", () => {
    const committed = [{ op: "add", path: "/items/0", value: "s" }, { op: "remove", path: "/items/3" }];
    const first = [{ op: "add", path: "/items/1", value: "p" }];
    const then = [{ op: "replace", path: "/items/2", value: "B" }, { op: "remove", path: "/items/3" }];
    const r1 = transform(first, committed, isList);
    const r2 = transform(then, r1.committed, isList);
    const whole = transform([...first, ...then], committed, isList);
    assert.deepEqual([...r1.ops, ...r2.ops], whole.ops);
    assert.deepEqual(r2.committed, whole.committed);
  });
});

describe("past", () => {
  it("leaves unrelated ops alone", () => {
    const op = { op: "replace", path: "/a/b", value: 1 };
    assert.deepEqual(past(op, { op: "test", path: "/a/b", value: 0 }, noLists), op);
    assert.deepEqual(past(op, { op: "replace", path: "/c", value: 0 }, noLists), op);
  });

  it("moves both ends of a move", () => {
    const isList = listOracle({ items: [1, 2, 3] });
    assert.deepEqual(past({ op: "move", from: "/items/2", path: "/items/0" }, { op: "remove", path: "/items/1" }, isList), {
      op: "move",
      from: "/items/1",
      path: "/items/0",
    });
  });

  it("follows a moved value, and of two moves of one value the later wins", () => {
    const isList = listOracle({ items: [{ t: 1 }, { t: 2 }, { t: 3 }] });
    const move = { op: "move", from: "/items/0", path: "/items/2" };
    assert.deepEqual(past({ op: "replace", path: "/items/0/t", value: 9 }, move, isList), { op: "replace", path: "/items/2/t", value: 9 });
    // An insert at the source does not follow the value away.
    assert.deepEqual(past({ op: "add", path: "/items/0", value: 0 }, move, isList), { op: "add", path: "/items/0", value: 0 });
    const other = { op: "move", from: "/items/0", path: "/items/1" };
    // [A,B,C]: they moved A to the end, we (later) put it at 1: [B,A,C] either way
    assert.deepEqual(past(other, move, isList, true), { op: "move", from: "/items/2", path: "/items/1" });
    assert.equal(past(other, move, isList, false), null);
  });

  it("puts the later of two inserts at one index after the earlier", () => {
    const isList = listOracle({ items: [1, 2] });
    const mine = { op: "add", path: "/items/1", value: "x" };
    const theirs = { op: "add", path: "/items/1", value: "y" };
    assert.deepEqual(past(mine, theirs, isList, true).path, "/items/2");
    assert.deepEqual(past(mine, theirs, isList, false).path, "/items/1");
  });

  it("is null when the target went", () => {
    assert.equal(past({ op: "remove", path: "/a" }, { op: "remove", path: "/a" }, noLists), null);
    assert.equal(past({ op: "replace", path: "/a/b", value: 1 }, { op: "replace", path: "", value: {} }, noLists), null);
  });
});
