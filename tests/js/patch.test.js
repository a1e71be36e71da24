// JSON Patch applier (RFC 6902), JSON Pointer and diff.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import {
  applyPatch,
  deepEqual,
  diff,
  formatPointer,
  getAt,
  parsePointer,
  PatchError,
} from "../../ws_sync/static/ws-sync.js";

// A copy of the public json-patch-tests data (see data/SOURCE.md), kept in
// the repo so the tests run on a clean clone.
function loadCases(file) {
  return JSON.parse(fs.readFileSync(new URL(`./data/${file}`, import.meta.url), "utf8"));
}

function deepFreeze(v) {
  if (v && typeof v === "object") {
    Object.freeze(v);
    Object.values(v).forEach(deepFreeze);
  }
  return v;
}

for (const file of ["tests.json", "spec_tests.json"]) {
  describe(`RFC 6902 conformance: ${file}`, () => {
    const cases = loadCases(file);
    it("has cases", () => assert.ok(cases.filter((c) => !c.disabled).length > 10));
    cases.forEach((c, i) => {
      if (c.disabled) return; // the data marks these as not to be run
      const name = `#${i} ${c.comment ?? c.error ?? JSON.stringify(c.patch).slice(0, 60)}`;
      it(name, () => {
        const doc = deepFreeze(structuredClone(c.doc)); // a write to the input would throw
        const before = structuredClone(c.doc);
        if ("expected" in c) {
          assert.ok(deepEqual(applyPatch(doc, c.patch), c.expected));
          assert.deepEqual(applyPatch(doc, c.patch), c.expected);
        } else {
          assert.throws(() => applyPatch(doc, c.patch), PatchError);
        }
        assert.deepEqual(doc, before, "the input document must not change");
      });
    });
  });
}

describe("applyPatch immutability and structural sharing", () => {
  const doc = deepFreeze({
    meta: { title: "t", tags: ["a"] },
    notes: [{ text: "one", done: false }, { text: "two", done: false }],
    other: { deep: { x: 1 } },
  });

  it("copies only the containers along the modified path", () => {
    const out = applyPatch(doc, [{ op: "replace", path: "/notes/1/done", value: true }]);
    assert.notEqual(out, doc);
    assert.notEqual(out.notes, doc.notes);
    assert.notEqual(out.notes[1], doc.notes[1]);
    assert.equal(out.notes[0], doc.notes[0]);
    assert.equal(out.meta, doc.meta);
    assert.equal(out.other, doc.other);
    assert.equal(out.notes[1].done, true);
    assert.equal(doc.notes[1].done, false);
  });

  it("test-only patches return the same document", () => {
    assert.equal(applyPatch(doc, [{ op: "test", path: "/meta/title", value: "t" }]), doc);
  });

  it("several ops on one container produce one consistent copy", () => {
    const out = applyPatch(doc, [
      { op: "add", path: "/notes/-", value: { text: "three", done: false } },
      { op: "replace", path: "/notes/0/text", value: "uno" },
      { op: "remove", path: "/notes/1" },
      { op: "move", from: "/meta/tags", path: "/tags" },
    ]);
    assert.deepEqual(out, {
      meta: { title: "t" },
      tags: ["a"],
      notes: [{ text: "uno", done: false }, { text: "three", done: false }],
      other: { deep: { x: 1 } },
    });
    assert.equal(out.tags, doc.meta.tags, "a moved value keeps its identity");
    assert.equal(out.other, doc.other);
  });

  it("copy makes an independent value", () => {
    const out = applyPatch(doc, [
      { op: "copy", from: "/other", path: "/copy" },
      { op: "replace", path: "/copy/deep/x", value: 2 },
    ]);
    assert.equal(out.other.deep.x, 1);
    assert.equal(out.copy.deep.x, 2);
  });

  it("a failing op leaves the input untouched and names the op", () => {
    const bad = { op: "remove", path: "/missing" };
    assert.throws(
      () => applyPatch(doc, [{ op: "replace", path: "/meta/title", value: "x" }, bad]),
      (e) => e instanceof PatchError && e.op === bad,
    );
    assert.equal(doc.meta.title, "t");
  });

  it("the root can be replaced and tested", () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: "replace", path: "", value: [1] }]), [1]);
    assert.throws(() => applyPatch({ a: 1 }, [{ op: "test", path: "", value: { a: 2 } }]), PatchError);
    assert.throws(() => applyPatch({ a: 1 }, [{ op: "remove", path: "" }]), PatchError);
  });

  it("rejects non-array patches and non-object operations", () => {
    assert.throws(() => applyPatch({}, { op: "add", path: "/a", value: 1 }), PatchError);
    assert.throws(() => applyPatch({}, ["add"]), PatchError);
    assert.throws(() => applyPatch({}, [{ op: "move", from: "/a", path: "/a/b" }]), PatchError);
  });
});

describe("prototype pollution", () => {
  const attacks = [
    [{ op: "add", path: "/__proto__/polluted", value: "yes" }],
    [{ op: "add", path: "/constructor/prototype/polluted", value: "yes" }],
    [{ op: "replace", path: "/a/__proto__", value: { polluted: "yes" } }],
    [{ op: "add", path: "/a/__proto__", value: { polluted: "yes" } }],
    [{ op: "add", path: "/a/constructor", value: "yes" }],
    [{ op: "add", path: "/prototype", value: "yes" }],
    [{ op: "copy", from: "/a", path: "/__proto__" }],
    [{ op: "move", from: "/a", path: "/__proto__/polluted" }],
    [{ op: "add", path: ["__proto__", "polluted"], value: "yes" }],
    [{ op: "test", path: "/a/constructor", value: {} }],
  ];
  for (const patch of attacks) {
    it(`refuses ${JSON.stringify(patch)}`, () => {
      const doc = { a: {} };
      assert.throws(() => applyPatch(doc, patch), PatchError);
      assert.equal({}.polluted, undefined);
      assert.equal(Object.prototype.polluted, undefined);
      assert.equal(Object.getPrototypeOf(doc.a), Object.prototype);
    });
  }

  it("refuses a __proto__ member even when it is an own key (JSON.parse makes those)", () => {
    const doc = JSON.parse('{"__proto__": {"x": 1}}');
    assert.throws(() => applyPatch(doc, [{ op: "replace", path: "/__proto__/x", value: 2 }]), PatchError);
    assert.equal({}.x, undefined);
  });

  it("array indices are not affected by the key filter", () => {
    assert.deepEqual(applyPatch({ prototypes: [1] }, [{ op: "add", path: "/prototypes/0", value: 0 }]), {
      prototypes: [0, 1],
    });
  });
});

describe("JSON Pointer", () => {
  it("unescapes ~1 to / and ~0 to ~ (in that order)", () => {
    assert.deepEqual(parsePointer("/a~1b/c~0d/~01"), ["a/b", "c~d", "~1"]);
    assert.deepEqual(parsePointer(""), []);
    assert.deepEqual(parsePointer("/"), [""]);
    assert.deepEqual(parsePointer(["notes", 3]), ["notes", "3"]);
  });

  it("round-trips through formatPointer", () => {
    for (const segs of [["a/b", "~", "", "x~1y"], ["0"], []]) assert.deepEqual(parsePointer(formatPointer(segs)), segs);
    assert.equal(formatPointer(["a/b", "c~d"]), "/a~1b/c~0d");
  });

  it("applies patches on escaped keys", () => {
    const doc = { "a/b": 1, "m~n": 2 };
    const out = applyPatch(doc, [
      { op: "replace", path: "/a~1b", value: 10 },
      { op: "remove", path: "/m~0n" },
      { op: "add", path: "/x~1~0", value: 3 },
    ]);
    assert.deepEqual(out, { "a/b": 10, "x/~": 3 });
  });

  it("rejects bad pointers", () => {
    for (const p of ["a", "/a~2", "/~", null, 3]) assert.throws(() => parsePointer(p), PatchError);
  });

  it("getAt reads own members only", () => {
    assert.equal(getAt({ a: [5, 6] }, "/a/1"), 6);
    assert.throws(() => getAt({}, "/toString"), PatchError);
    assert.throws(() => getAt({ a: [1] }, "/a/length"), PatchError);
  });
});

describe("diff", () => {
  const roundTrip = (a, b) => {
    const ops = diff(a, b);
    const json = (v) => JSON.parse(JSON.stringify(v)); // as the wire sees it: undefined members vanish
    assert.deepEqual(json(applyPatch(a, ops)), json(b), `diff ${JSON.stringify(ops)}`);
    return ops;
  };

  it("is empty for equal values, by reference or by value", () => {
    const a = { x: [1, { y: 2 }] };
    assert.deepEqual(diff(a, a), []);
    assert.deepEqual(diff(a, structuredClone(a)), []);
  });

  it("emits one op per changed field", () => {
    const a = { title: "t", notes: ["a"], keep: { deep: 1 } };
    assert.deepEqual(diff(a, { ...a, title: "u" }), [{ op: "replace", path: "/title", value: "u" }]);
    assert.deepEqual(roundTrip(a, { ...a, extra: null }), [{ op: "add", path: "/extra", value: null }]);
    assert.deepEqual(roundTrip(a, { title: "t", notes: ["a"] }), [{ op: "remove", path: "/keep" }]);
  });

  it("treats undefined members as absent", () => {
    assert.deepEqual(roundTrip({ a: 1, b: 2 }, { a: 1, b: undefined }), [{ op: "remove", path: "/b" }]);
    assert.deepEqual(diff({ a: 1, b: undefined }, { a: 1 }), []);
  });

  it("inserting, appending or removing one array element is one op", () => {
    const list = Array.from({ length: 50 }, (_, i) => ({ id: i }));
    assert.deepEqual(roundTrip(list, [{ id: -1 }, ...list]), [{ op: "add", path: "/0", value: { id: -1 } }]);
    assert.deepEqual(roundTrip(list, list.filter((x) => x.id !== 20)), [{ op: "remove", path: "/20" }]);
    assert.deepEqual(roundTrip(list, [...list, { id: 50 }]), [{ op: "add", path: "/-", value: { id: 50 } }]);
    const changed = list.map((x) => (x.id === 7 ? { id: 7, v: true } : x));
    assert.deepEqual(roundTrip(list, changed), [{ op: "add", path: "/7/v", value: true }]);
  });

  it("escapes keys and replaces on type changes", () => {
    assert.deepEqual(roundTrip({ "a/b": 1 }, { "a/b": 2 }), [{ op: "replace", path: "/a~1b", value: 2 }]);
    roundTrip({ a: [1] }, { a: { 0: 1 } });
    roundTrip({ a: null }, { a: {} });
    roundTrip([1, 2], { x: 1 });
  });

  it("round-trips random edits (seeded)", () => {
    let seed = 42;
    const rand = (n) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const randomValue = (depth) => {
      const k = rand(depth > 2 ? 3 : 6);
      if (k === 0) return rand(5);
      if (k === 1) return ["x", "y", "a/b", "~"][rand(4)];
      if (k === 2) return rand(2) ? null : true;
      if (k === 3) return Array.from({ length: rand(5) }, () => randomValue(depth + 1));
      return Object.fromEntries(Array.from({ length: rand(4) }, () => [["p", "q", "r/s", "t~"][rand(4)], randomValue(depth + 1)]));
    };
    const mutate = (v, depth = 0) => {
      if (v === null || typeof v !== "object" || rand(4) === 0) return rand(3) ? v : randomValue(depth);
      if (Array.isArray(v)) {
        const out = v.map((x) => mutate(x, depth + 1));
        if (rand(3) === 0) out.splice(rand(out.length + 1), 0, randomValue(depth + 1));
        if (out.length && rand(3) === 0) out.splice(rand(out.length), 1);
        return out;
      }
      const out = {};
      for (const [k, x] of Object.entries(v)) if (rand(5)) out[k] = mutate(x, depth + 1);
      if (rand(3) === 0) out[["p", "q", "new"][rand(3)]] = randomValue(depth + 1);
      return out;
    };
    for (let i = 0; i < 300; i++) {
      const a = { root: randomValue(0) };
      roundTrip(a, { root: mutate(a.root) });
    }
  });
});
