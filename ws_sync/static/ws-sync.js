/**
 * ws-sync browser client.
 *
 * Keeps a local copy of server-side Python objects in sync over one WebSocket
 * (wire protocol: docs/protocol.md). Zero dependencies; an ES module for
 * modern browsers and Node >= 20.
 *
 *   const session = new Session("wss://example.org/ws").connect();
 *   const notes = session.store("NOTES", { title: "", notes: [] });
 *   notes.subscribe(() => render(notes.getState()));
 *   await notes.action("RENAME", { new_title: "Groceries" });
 *
 * Every outbound text frame is `JSON.stringify({type, data})`, except local
 * writes under versioned sync, which add `v`, `epoch` and `$id`. Every action or
 * task-start promise settles exactly once: on its answer, after
 * `actionTimeout`, or with a ConnectionError when it can no longer be
 * answered. Calls made offline wait for the reconnect; unanswered ones go
 * again, same `$id`, to a protocol-2 server, which runs each id once. At most
 * `maxInFlight` actions await their answer at once; later calls wait in order.
 *
 * Versioned sync ("protocol 2"): the socket URL gets `ws_sync=2` and the first
 * frame is `_HELLO` with the confirmed version of every store. Server `_SET`
 * and `_PATCH` frames carry the object's version `v`; a store keeps the
 * server's confirmed copy, its version and epoch, one write in flight and the
 * edits made since, transformed past every server commit as the server
 * transforms writes (`transform`). A server that does not answer `_HELLO`
 * that way is spoken to in protocol 1, exactly as before.
 *
 * @module ws-sync
 */

// ---------------------------------------------------------------------------
// JSON Pointer (RFC 6901) and JSON Patch (RFC 6902)
// ---------------------------------------------------------------------------

/** Thrown when a JSON Patch or JSON Pointer is invalid or does not apply. */
export class PatchError extends Error {
  constructor(message, op) {
    super(message);
    this.name = "PatchError";
    /** The operation that failed, if any. */
    this.op = op;
  }
}

/**
 * Object keys that could reach `Object.prototype` through assignment. Patches
 * come from the network, so a path through one of these must never be
 * followed or written, whatever the server sends.
 */
const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

const isContainer = (v) => v !== null && typeof v === "object";

/**
 * Split a JSON Pointer into unescaped segments. An array of segments is
 * accepted as is (numbers become strings), so callers can skip escaping.
 * @param {string | Array<string|number>} pointer
 * @returns {string[]}
 */
export function parsePointer(pointer) {
  if (Array.isArray(pointer)) return pointer.map(String);
  if (typeof pointer !== "string") {
    throw new PatchError(`a JSON Pointer must be a string, got ${pointer === null ? "null" : typeof pointer}`);
  }
  if (pointer === "") return [];
  if (pointer[0] !== "/") throw new PatchError(`JSON Pointer ${JSON.stringify(pointer)} must start with "/"`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => {
      if (/~(?![01])/.test(token)) throw new PatchError(`bad escape in JSON Pointer token ${JSON.stringify(token)}`);
      // ~1 first: "~01" must become "~1", not "/".
      return token.replace(/~1/g, "/").replace(/~0/g, "~");
    });
}

/**
 * Build a JSON Pointer from raw segments, escaping "~" and "/".
 * @param {Array<string|number>} segments
 * @returns {string}
 */
export function formatPointer(segments) {
  return segments.map((s) => "/" + String(s).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

/** Resolve `token` as an index of `arr`; `"-"` and `length` are allowed only when adding. */
function arrayIndex(arr, token, forAdd) {
  if (forAdd && token === "-") return arr.length;
  if (!ARRAY_INDEX.test(token)) throw new PatchError(`${JSON.stringify(token)} is not an array index`);
  const i = Number(token);
  if (forAdd ? i > arr.length : i >= arr.length) throw new PatchError(`array index ${i} is out of bounds`);
  return i;
}

function safeKey(token) {
  if (UNSAFE_KEYS.has(token)) throw new PatchError(`refusing unsafe object key ${JSON.stringify(token)}`);
  return token;
}

/** The existing child slot of `node` named by `token` (array index or own key). */
function existingSlot(node, token) {
  if (Array.isArray(node)) return arrayIndex(node, token, false);
  if (!isContainer(node)) throw new PatchError(`cannot descend into a ${node === null ? "null" : typeof node}`);
  if (!Object.hasOwn(node, safeKey(token))) throw new PatchError(`no member ${JSON.stringify(token)}`);
  return token;
}

/**
 * The value at `pointer` in `doc`; throws {@link PatchError} if absent.
 * @param {any} doc
 * @param {string | Array<string|number>} pointer
 */
export function getAt(doc, pointer) {
  let node = doc;
  for (const token of parsePointer(pointer)) node = node[existingSlot(node, token)];
  return node;
}

/** Whether `pointer` names an existing value in `doc`. */
export function hasAt(doc, pointer) {
  try {
    getAt(doc, pointer);
    return true;
  } catch (e) {
    if (e instanceof PatchError) return false;
    throw e;
  }
}

/**
 * JSON equality: same type, same members, key order ignored.
 * Object members holding `undefined` are absent in JSON, and are here too.
 */
export function deepEqual(a, b) {
  if (a === b) return true;
  if (!isContainer(a) || !isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

function cloneJSON(v) {
  if (!isContainer(v)) return v;
  if (Array.isArray(v)) return v.map(cloneJSON);
  const out = {};
  for (const k of Object.keys(v)) out[k] = cloneJSON(v[k]);
  return out;
}

/**
 * Apply an RFC 6902 patch without mutating `doc`.
 *
 * Only the containers along modified paths are copied, so untouched subtrees
 * keep their identity (cheap `===` checks in React) and changed ones get new
 * references. The patch is all or nothing: on any error a {@link PatchError}
 * is thrown and `doc` is unchanged.
 *
 * @template T
 * @param {T} doc
 * @param {Array<object>} ops
 * @returns {T}
 */
export function applyPatch(doc, ops) {
  if (!Array.isArray(ops)) throw new PatchError("a JSON Patch must be an array of operations");
  // Containers this call has already copied may be edited in place by later
  // operations of the same patch: one copy per container, not one per op.
  const owned = new WeakSet();
  let root = doc;
  for (const op of ops) {
    try {
      root = applyOperation(root, op, owned);
    } catch (e) {
      if (e instanceof PatchError && !e.op) e.op = op;
      throw e;
    }
  }
  return root;
}

/**
 * `ops` with each `"-"` list index (append) replaced by the index it stands
 * for on `doc`, as the ops apply one after the other. A concurrent write
 * shifts a concrete index, where `"-"` would keep meaning "the end" and
 * leave a later op naming the new item by index on another one.
 *
 * @param {any} doc
 * @param {Array<object>} ops
 * @returns {Array<object>}
 */
export function resolveAppends(doc, ops) {
  if (!ops.some((op) => typeof op?.path === "string" && op.path.endsWith("/-"))) return ops;
  try {
    return ops.map(resolveOne);
  } catch {
    return ops; // they do not apply: whoever applies them reports that
  }
  function resolveOne(op) {
    let out = op;
    if (typeof op.path === "string" && op.path.endsWith("/-")) {
      const before = op.op === "move" && typeof op.from === "string" ? applyPatch(doc, [{ op: "remove", path: op.from }]) : doc;
      const list = getAt(before, op.path.slice(0, -2));
      if (Array.isArray(list)) out = { ...op, path: `${op.path.slice(0, -2)}/${list.length}` };
    }
    doc = applyPatch(doc, [out]);
    return out;
  }
}

function applyOperation(root, op, owned) {
  if (!isContainer(op) || Array.isArray(op)) throw new PatchError("a patch operation must be an object");
  const path = parsePointer(op.path);
  const needValue = () => {
    if (!("value" in op)) throw new PatchError(`"${op.op}" needs a "value"`);
    return op.value;
  };
  const needFrom = () => {
    if (!("from" in op)) throw new PatchError(`"${op.op}" needs a "from"`);
    return parsePointer(op.from);
  };
  switch (op.op) {
    case "add":
      return add(root, path, needValue(), owned);
    case "remove":
      return remove(root, path, owned).root;
    case "replace":
      return replace(root, path, needValue(), owned);
    case "test":
      if (!deepEqual(getAt(root, path), needValue())) throw new PatchError(`test failed at ${op.path}`);
      return root;
    case "move": {
      const from = needFrom();
      if (from.length < path.length && from.every((s, i) => s === path[i])) {
        throw new PatchError("cannot move a value into one of its own children");
      }
      if (from.length === path.length && from.every((s, i) => s === path[i])) {
        getAt(root, from); // must exist; otherwise a no-op
        return root;
      }
      const removed = remove(root, from, owned);
      return add(removed.root, path, removed.value, owned);
    }
    case "copy":
      // A deep copy: the same container must never sit at two places of a
      // document whose owned containers get edited in place.
      return add(root, path, cloneJSON(getAt(root, needFrom())), owned);
    default:
      throw new PatchError(`unknown patch operation ${JSON.stringify(op.op)}`);
  }
}

/**
 * Copy-on-write walk to the parent of `path`: returns the new root, in which
 * every container from the root to that parent is owned by this patch, and
 * calls `edit(parent, lastToken)` to change the parent in place.
 */
function editParent(root, path, owned, edit) {
  const own = (node) => {
    if (owned.has(node)) return node;
    const copy = Array.isArray(node) ? node.slice() : { ...node };
    owned.add(copy);
    return copy;
  };
  if (!isContainer(root)) throw new PatchError("the document has no members");
  const newRoot = own(root);
  let node = newRoot;
  for (let i = 0; i < path.length - 1; i++) {
    const slot = existingSlot(node, path[i]);
    if (!isContainer(node[slot])) throw new PatchError(`${formatPointer(path.slice(0, i + 1))} is not a container`);
    node = node[slot] = own(node[slot]);
  }
  edit(node, path[path.length - 1]);
  return newRoot;
}

function add(root, path, value, owned) {
  if (path.length === 0) return value;
  return editParent(root, path, owned, (parent, token) => {
    if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, true), 0, value);
    else parent[safeKey(token)] = value;
  });
}

function replace(root, path, value, owned) {
  if (path.length === 0) return value;
  return editParent(root, path, owned, (parent, token) => {
    parent[existingSlot(parent, token)] = value;
  });
}

function remove(root, path, owned) {
  if (path.length === 0) throw new PatchError("cannot remove the whole document");
  let value;
  const newRoot = editParent(root, path, owned, (parent, token) => {
    const slot = existingSlot(parent, token);
    value = parent[slot];
    if (Array.isArray(parent)) parent.splice(slot, 1);
    else delete parent[slot];
  });
  return { root: newRoot, value };
}

/**
 * A small, correct RFC 6902 patch turning `before` into `after`.
 *
 * Unchanged subtrees are skipped by reference first (immutable updates keep
 * them), then by value. Arrays strip the common head and tail, so inserting
 * or deleting one element costs one operation, not a rewrite of the tail;
 * appending uses the index "-".
 * Object members holding `undefined` count as absent, as in JSON.
 *
 * @param {any} before
 * @param {any} after
 * @returns {Array<object>}
 */
export function diff(before, after) {
  const ops = [];
  diffInto(before, after, [], ops);
  return ops;
}

function diffInto(a, b, path, ops) {
  if (a === b) return;
  const aIsArray = Array.isArray(a);
  if (isContainer(a) && isContainer(b) && aIsArray === Array.isArray(b)) {
    if (aIsArray) diffArrays(a, b, path, ops);
    else diffObjects(a, b, path, ops);
  } else if (!deepEqual(a, b)) {
    ops.push({ op: "replace", path: formatPointer(path), value: b });
  }
}

function diffObjects(a, b, path, ops) {
  for (const k of Object.keys(a)) {
    if (a[k] !== undefined && (!Object.hasOwn(b, k) || b[k] === undefined)) ops.push({ op: "remove", path: formatPointer([...path, k]) });
  }
  for (const k of Object.keys(b)) {
    if (b[k] === undefined) continue;
    if (!Object.hasOwn(a, k) || a[k] === undefined) ops.push({ op: "add", path: formatPointer([...path, k]), value: b[k] });
    else diffInto(a[k], b[k], [...path, k], ops);
  }
}

function diffArrays(a, b, path, ops) {
  const same = (x, y) => x === y || deepEqual(x, y);
  let start = 0;
  while (start < a.length && start < b.length && same(a[start], b[start])) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && same(a[endA - 1], b[endB - 1])) {
    endA--;
    endB--;
  }
  // Positions present in both middles are diffed in place; then the surplus
  // of the old middle is removed back to front (indices stay valid), or the
  // surplus of the new one inserted front to back.
  const paired = Math.min(endA, endB) - start;
  for (let i = start; i < start + paired; i++) diffInto(a[i], b[i], [...path, i], ops);
  for (let i = endA - 1; i >= start + paired; i--) ops.push({ op: "remove", path: formatPointer([...path, i]) });
  // Appends say "-": replayed on a list that has grown meanwhile (offline
  // edits), they still append instead of landing mid-list.
  const appending = endA === a.length;
  for (let i = start + paired; i < endB; i++) {
    ops.push({ op: "add", path: formatPointer([...path, appending ? "-" : i]), value: b[i] });
  }
}

// ---------------------------------------------------------------------------
// Transform of concurrent JSON Patch ops (the server's ws_sync/transform.py)
// ---------------------------------------------------------------------------

/**
 * `ops` rewritten to apply after `committed`, as ws_sync/transform.py does
 * (same rules, same table of cases: tests/transform_cases.json). List indexes
 * shift across adds, removes and moves of the same list (of two inserts at
 * one index the committed one comes first); an op whose target or an
 * ancestor of it was removed or replaced is dropped; an op inside a moved
 * value follows it; two writes of one path keep the later (`ops`).
 * `isList(tokens)` says whether the container at those tokens is an array in
 * the document the ops were made on.
 *
 * Each op of `ops` applies after the ones before it, so the committed ops are
 * carried past each op in turn, where they stood when it applied (also past
 * an op that is dropped: the client had applied it). Returns the kept ops,
 * the indexes (in `ops`) of the dropped ones, and `committed`: the committed
 * ops carried past all of `ops`, which is what ops made after `ops` must be
 * transformed past in turn.
 *
 * @param {Array<object>} ops
 * @param {Array<object>} committed
 * @param {(tokens: string[]) => boolean} isList
 * @returns {{ops: Array<object>, dropped: number[], committed: Array<object>}}
 */
export function transform(ops, committed, isList) {
  let steps = committed.map(structural).filter((step) => step !== null);
  const out = [];
  const dropped = [];
  ops.forEach((op, i) => {
    let current = op;
    const carried = [];
    for (const step of steps) {
      if (current === null) {
        carried.push(step);
        continue;
      }
      // Both from the values before this pair: the step and the op meet once.
      const moved = past(step, current, isList, false);
      current = past(current, step, isList, true);
      if (moved !== null) carried.push(moved);
    }
    steps = carried;
    if (current === null) dropped.push(i);
    else out.push(current);
  });
  return { ops: out, dropped, committed: steps };
}

/** A committed op as it changes the document's shape: a copy adds, a test does nothing (null). */
function structural(op) {
  switch (op?.op) {
    case "copy":
      return { op: "add", path: op.path };
    case "add":
    case "remove":
    case "replace":
    case "move":
      return op;
    default:
      return null;
  }
}

const INSERTS = new Set(["add", "move", "copy"]);

/**
 * `op` after `first` was applied before it; null if `first` removed or
 * replaced what `op` needs. `later`: `op` is the later of the two, so it
 * loses a tie between two inserts at one index and wins between two moves
 * of one value.
 * @param {object} op
 * @param {object} first
 * @param {(tokens: string[]) => boolean} isList
 * @param {boolean} [later]
 * @returns {object | null}
 */
export function past(op, first, isList, later = true) {
  first = structural(first);
  if (first === null) return op;
  const out = { ...op };
  for (const field of "from" in op ? ["path", "from"] : ["path"]) {
    const own = field === "path" && INSERTS.has(op.op); // an insert position, not a value
    const x = parsePointer(op[field]);
    const moving = field === "path" && op.op === "move";
    const shifted =
      first.op === "move"
        ? moving
          ? targetPastMove(x, parsePointer(op.from), first, isList, later)
          : pastMove(x, own, first, isList, later, op, field)
        : moving
          ? targetPast(x, parsePointer(op.from), first, isList, later)
          : shift(x, own, first, isList, later);
    if (shifted === null) return null;
    out[field] = formatPointer(shifted);
  }
  return out;
}

/**
 * A move's target after `step`. In the move's own list the target index
 * counts without the moved item, so `step` is seen that way too.
 */
function targetPast(target, source, step, isList, later) {
  const n = target.length;
  const s = parsePointer(step.path);
  const sameList =
    source.length === n &&
    samePrefix(source, target, n - 1) &&
    s.length >= n &&
    samePrefix(s, target, n - 1) &&
    DIGITS.test(source[n - 1]) &&
    DIGITS.test(s[n - 1]) &&
    isList(target.slice(0, -1));
  if (!sameList) return shift(target, true, step, isList, later);
  const f = Number(source[n - 1]);
  const k = Number(s[n - 1]);
  if (k === f && step.op !== "add") return target; // the moved item itself: its source decides
  const seen = k < f || (k === f && step.op === "add") ? k : k - 1;
  const path = formatPointer([...s.slice(0, n - 1), String(seen), ...s.slice(n)]);
  return shift(target, true, { ...step, path }, isList, later);
}

/**
 * A move's target after another move: its remove, then its add, each seen
 * without the item this move takes (as {@link targetPast}).
 */
function targetPastMove(target, source, move, isList, later) {
  if (sameTokens(source, parsePointer(move.from))) return target; // one item moved twice: its target stays
  const removal = { op: "remove", path: move.from };
  const after = targetPast(target, source, removal, isList, later);
  const movedSource = shift(source, false, removal, isList, later);
  if (after === null || movedSource === null) return null;
  return targetPast(after, movedSource, { op: "add", path: move.path }, isList, later);
}

const sameTokens = (a, b) => a.length === b.length && samePrefix(a, b, a.length);

/** The tokens `x` after `move`: the moved value (or inside it) follows it; anything else shifts as by a remove then an add. */
function pastMove(x, own, move, isList, later, op, field) {
  const source = parsePointer(move.from);
  const target = parsePointer(move.path);
  const n = source.length;
  if (!own && x.length >= n && samePrefix(x, source, n)) {
    // Both moved this value (in place, too): the later move wins.
    if (field === "from" && op.op === "move" && x.length === n && !later) return null;
    return [...target, ...x.slice(n)];
  }
  const removed = shift(x, own, { op: "remove", path: move.from }, isList, later);
  return removed === null ? null : shift(removed, own, { op: "add", path: move.path }, isList, later);
}

const DIGITS = /^[0-9]+$/;

const samePrefix = (a, b, n) => {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
};

/**
 * The tokens `x` after `step` (add, remove or replace); null if `step` took
 * its target. `own`: `x` is an insert position, not a value.
 */
function shift(x, own, step, isList, later) {
  const t = parsePointer(step.path);
  const kind = step.op;
  const n = t.length;
  if (n === 0) return x.length > 0 ? null : x; // the whole document replaced or removed
  if (x.length < n || !samePrefix(x, t, n - 1)) return x; // not in the same container
  const atLevel = x.length === n;
  if (isList(t.slice(0, -1))) {
    const [j, k] = [x[n - 1], t[n - 1]];
    if (!DIGITS.test(j) || !DIGITS.test(k)) return x; // "-" included
    let ji = Number(j);
    const ki = Number(k);
    if (kind === "add") {
      // Of two inserts at one index, the earlier one comes first.
      if (ji > ki || (ji === ki && !(own && atLevel && !later))) ji++;
    } else if (kind === "remove") {
      if (ji === ki && !(own && atLevel)) return null;
      if (ji > ki) ji--;
    } else if (kind === "replace" && ji === ki && !atLevel) {
      return null;
    }
    return [...x.slice(0, n - 1), String(ji), ...x.slice(n)];
  }
  if (x[n - 1] !== t[n - 1]) return x;
  if (!atLevel) return null; // an ancestor was replaced or removed
  if (kind === "remove" && !own) return null;
  return x;
}

/**
 * `isList` for {@link transform}, read from `doc`: an index past the end, or
 * a path through a scalar, names no array.
 */
function listsOf(doc) {
  return (tokens) => {
    let node = doc;
    for (const token of tokens) {
      if (Array.isArray(node)) node = DIGITS.test(token) && Number(token) < node.length ? node[Number(token)] : undefined;
      else if (isContainer(node)) node = Object.hasOwn(node, token) ? node[token] : undefined;
      else return false;
    }
    return Array.isArray(node);
  };
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** The server's answer to an action was an error (`ok: false` or `_ERROR`). */
export class ActionError extends Error {
  constructor(message, details = {}) {
    super(message);
    this.name = "ActionError";
    /** The `error` object of `_ACTION_RESULT`, or the `_ERROR` data. */
    this.details = details;
  }
}

/**
 * No answer within `actionTimeout`. An ActionError (callers that catch those
 * catch this too) named "TimeoutError"; the action may still run.
 */
export class ActionTimeoutError extends ActionError {
  constructor(message, details = {}) {
    super(message, details);
    this.name = "TimeoutError";
  }
}

/** The request could not be sent, or its connection closed before the answer. */
export class ConnectionError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConnectionError";
  }
}

/**
 * The server action type for a camelCase JavaScript name: `addNote` →
 * `ADD_NOTE`, `loadURL` → `LOAD_URL`, `rename` → `RENAME`.
 * @param {string} name
 */
export function toActionType(name) {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1_$2")
    .toUpperCase();
}

/** Decode base64 (as in `_DOWNLOAD`) to bytes. */
export function decodeBase64(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/** An id nobody can guess (session ids): the platform's CSPRNG, never Math.random. */
function randomId() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  // randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere.
  if (!c?.getRandomValues) throw new Error("ws-sync: no crypto.getRandomValues to make session ids");
  const bytes = c.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Keeps call ids apart across reloads: random, but no secret (works without crypto). */
function callPrefix() {
  try {
    return randomId().replace(/-/g, "").slice(0, 12);
  } catch {
    return Math.random().toString(16).slice(2, 14).padEnd(12, "0");
  }
}

/** Read an id from web storage, creating and saving one if missing. Storage may be absent or throw (privacy modes). */
function storedId(storage, key) {
  try {
    const existing = storage?.getItem(key);
    if (existing) return existing;
    const id = randomId();
    storage?.setItem(key, id);
    return id;
  } catch {
    return randomId();
  }
}

function globalStorage(name) {
  try {
    return globalThis[name] ?? null;
  } catch {
    return null; // e.g. sandboxed iframes throw on access
  }
}

function defaultToast({ type, message }) {
  const log = type === "error" ? console.error : type === "warning" ? console.warn : console.info;
  log(`[ws-sync] ${message}`);
}

/** Save a `_DOWNLOAD` file through a temporary link; a no-op outside browsers. */
function defaultDownload({ filename, data }) {
  if (typeof document === "undefined" || typeof URL?.createObjectURL !== "function") return;
  const url = URL.createObjectURL(new Blob([decodeBase64(data)]));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

const WS_OPEN = 1; // WebSocket.OPEN, spelled out so fake sockets need no statics

/** Query parameter announcing versioned sync on the socket URL. */
const PROTOCOL_PARAM = "ws_sync";

/**
 * `url` with `ws_sync=2` added, or null if it cannot be parsed (then the
 * connection speaks protocol 1). The app's own query is kept byte for byte.
 */
function versionedUrl(url) {
  let u;
  try {
    u = new URL(url, globalThis.location?.href);
  } catch {
    return null;
  }
  if (u.searchParams.has(PROTOCOL_PARAM)) u.searchParams.set(PROTOCOL_PARAM, "2");
  else u.search += `${u.search ? "&" : "?"}${PROTOCOL_PARAM}=2`;
  return u.href;
}

/** Frames that carry object state, and under protocol 2 a version. */
const isStateEvent = (type) => type.startsWith("_SET:") || type.startsWith("_PATCH:");

const DEFAULTS = {
  reconnect: true,
  initialDelay: 500,
  maxDelay: 30_000,
  factor: 2,
  jitter: 0.5,
  offlineEdits: "queue",
  offlineActions: "queue",
  actionTimeout: 30_000,
  pingInterval: 10_000,
  pingTimeout: 10_000,
  getOnConnect: false,
  maxInFlight: 32,
  protocol: 2,
  storageKey: "ws-sync",
  onStateChange: null,
  // `ref` names the server-log entry of an internal error whose text is hidden.
  onError: (err) => console.warn(`[ws-sync] ${err.event ?? "error"}: ${err.message}${err.ref ? ` (ref ${err.ref})` : ""}`, err),
  onDisconnect: (message) => console.warn(`[ws-sync] disconnected by the server: ${message}`),
  onToast: defaultToast,
  onDownload: defaultDownload,
  onEditsDropped: ({ key, ops, reason }) => console.warn(`[ws-sync] ${key}: local edit dropped (${reason})`, ops),
};

/** The event kind and key of `"_ACTION:NOTES"`: `["_ACTION", "NOTES"]`; `["", ""]` without a colon. */
function splitEvent(event) {
  if (typeof event !== "string") return ["", ""];
  const colon = event.indexOf(":");
  return colon < 0 ? ["", ""] : [event.slice(0, colon), event.slice(colon + 1)];
}

const actionError = (err) => new ActionError(err.message ?? "rejected by the server", err);

// ---------------------------------------------------------------------------
// ActionCalls: the `$id` actions of a session, in flight or waiting
// ---------------------------------------------------------------------------

/**
 * Actions awaiting their `_ACTION_RESULT`. At most `maxInFlight` are sent
 * and unanswered at once: the server reads a flooding client slowly
 * (backpressure), so a burst would otherwise stall every frame behind it,
 * patches included. Later calls wait here in call order and go out as
 * answers come in. Ids are unique across page reloads, so answers are
 * matched by id alone.
 *
 * Calls made while the connection is down wait too (`offlineActions:
 * "queue"`), and so do calls sent on a protocol-2 connection that dropped
 * before their answer: the server remembers ids, so the same frame is sent
 * again after the resume and runs at most once. Such carried-over calls go
 * only once the new connection's protocol is known and its resume is in.
 * Every call settles: with its answer, an error, or after `actionTimeout`.
 */
class ActionCalls {
  constructor(session) {
    this.session = session;
    this._inFlight = new Map(); // $id -> entry, oldest sent first
    this._waiting = []; // entries not sent (or to be sent again), FIFO
  }

  /** Send `{type, ...params, $id}` as `event` (or queue it); a Promise of the result. */
  call(event, type, params) {
    return new Promise((resolve, reject) => {
      const session = this.session;
      const id = session._newId();
      // Serialized now: a bad param throws to this caller, not to whichever
      // answer later sends the frame.
      const text = JSON.stringify({ type: event, data: { type, ...params, $id: id } });
      const entry = { id, event, type, text, resolve, reject, timer: null, carried: !session.isOpen, resend: false };
      if (!session.isOpen && !session._queuesCalls()) return reject(new ConnectionError(`not connected: action ${type} not sent`));
      this._arm(entry);
      this._waiting.push(entry);
      this._pump();
    });
  }

  /** Unanswered actions, sent or waiting. */
  get size() {
    return this._inFlight.size + this._waiting.length;
  }

  /** An `_ACTION_RESULT`; one for an id already settled (or unknown) is ignored. */
  onResult(data) {
    const entry = this._take(data?.id);
    if (!entry) return;
    if (data.ok) entry.resolve(data.result);
    else entry.reject(new ActionError(data.error?.message ?? "action failed", data.error ?? {}));
  }

  /** Reject the sent action `id` with `error`. False if no such action is pending. */
  reject(id, error) {
    const entry = this._take(id);
    entry?.reject(error);
    return entry !== null;
  }

  /** Reject the oldest sent action of `event` (the server answers in order). */
  rejectOldest(event, error) {
    for (const entry of this._inFlight.values()) {
      if (entry.event === event) return this.reject(entry.id, error);
    }
    return false;
  }

  /** The session closed for good: every call, sent or waiting, rejects. */
  failAll(message) {
    const all = [...this._inFlight.values(), ...this._waiting];
    this._inFlight.clear();
    this._waiting = [];
    for (const entry of all) this._fail(entry, new ConnectionError(message));
  }

  /**
   * The connection dropped and another will follow. Sent calls go again if
   * the server remembers ids (`resend`, protocol 2), else reject: they may
   * have run. Calls not sent yet wait, unless `offlineActions` is "fail".
   */
  onLost(message, resend) {
    const queue = this.session.options.offlineActions === "queue";
    const again = [];
    for (const entry of this._inFlight.values()) {
      if (resend) again.push(Object.assign(entry, { carried: true, resend: true }));
      else this._fail(entry, new ConnectionError(message));
    }
    this._inFlight.clear();
    const waiting = this._waiting;
    this._waiting = again;
    for (const entry of waiting) {
      if (queue || entry.resend) this._waiting.push(Object.assign(entry, { carried: true }));
      else this._fail(entry, new ConnectionError(message));
    }
  }

  /** The new connection's resume is in: a resend to a server that does not remember ids rejects; the rest goes. */
  onResumed(protocol) {
    if (protocol !== 2) {
      const resends = this._waiting.filter((e) => e.resend);
      this._waiting = this._waiting.filter((e) => !e.resend);
      for (const entry of resends) this._fail(entry, new ConnectionError("connection lost before the answer"));
    }
    this._pump();
  }

  /** Remove and return the sent entry `id` (or null), letting a waiting call take its slot. */
  _take(id) {
    const entry = this._inFlight.get(id);
    if (!entry) return null;
    this._inFlight.delete(id);
    this._settled(entry);
    this._pump();
    return entry;
  }

  _fail(entry, error) {
    this._settled(entry);
    entry.reject(error);
  }

  _settled(entry) {
    if (entry.timer !== null) this.session._clearTimeout(entry.timer);
    entry.timer = null;
  }

  /** Start the `actionTimeout` clock of `entry`, from the call on (queued or not). */
  _arm(entry) {
    const ms = this.session.options.actionTimeout;
    if (ms === null || ms === undefined || ms === Infinity) return;
    entry.timer = this.session._setTimeout(() => {
      entry.timer = null;
      if (this._inFlight.delete(entry.id)) this._pump();
      else this._waiting = this._waiting.filter((e) => e !== entry);
      entry.reject(new ActionTimeoutError(`action ${entry.type}: no answer within ${ms} ms`, { id: entry.id, timeout: ms }));
    }, ms);
  }

  /** Whether `entry` may go now: carried-over calls wait for the new connection's resume. */
  _canSend(entry) {
    const s = this.session;
    return s.isOpen && !s._barrier && (!entry.carried || s._protocol !== null);
  }

  _pump() {
    while (this._waiting.length > 0 && this._inFlight.size < this.session.options.maxInFlight && this._canSend(this._waiting[0])) {
      this._transmit(this._waiting.shift());
    }
  }

  _transmit(entry) {
    let sent;
    try {
      sent = this.session._sendText(entry.text);
    } catch (e) {
      this._fail(entry, e);
      return;
    }
    if (sent) this._inFlight.set(entry.id, entry);
    else this._fail(entry, new ConnectionError(`not connected: action ${entry.type} not sent`));
  }
}

// ---------------------------------------------------------------------------
// Session: one WebSocket, reconnects, routes events
// ---------------------------------------------------------------------------

/**
 * One WebSocket connection to a ws-sync server, reconnecting on loss.
 *
 * States:
 * - "connecting": the first connection is being opened;
 * - "open": connected;
 * - "reconnecting": the connection was lost; a retry is scheduled (backoff)
 *   or under way. Calls and edits wait for it.
 * - "offline": the browser says it is offline; no retries until it is back
 *   online (or `retryNow()`);
 * - "closed": `close()` was called, or the connection was lost with
 *   `reconnect: false`;
 * - "disconnected": the server sent `_DISCONNECT` (another tab took the
 *   session over; `disconnectMessage` says why); no reconnect until
 *   `connect()` or `retryNow()`.
 *
 * On a protocol-2 connection idle for `pingInterval` the session sends
 * `_PING`; with no frame within `pingTimeout` after it, the connection
 * counts as dead and is replaced.
 */
export class Session {
  /**
   * @param {string} url WebSocket URL.
   * @param {object} [options] See ws-sync.d.ts (`SessionOptions`).
   */
  constructor(url, options = {}) {
    this.url = url;
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...DEFAULTS, ...defined };
    if (!(this.options.maxInFlight >= 1)) throw new RangeError("maxInFlight must be at least 1");
    if (![1, 2].includes(this.options.protocol)) throw new RangeError("protocol must be 1 or 2");
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._setTimeout = options.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout ?? ((t) => globalThis.clearTimeout(t));
    this._random = options.random ?? Math.random;
    // online/offline events: `window` in browsers; any EventTarget in tests.
    this._window = "window" in options ? options.window : globalThis.window;
    this._handlers = new Map(); // event type -> Set<handler>
    this._stateListeners = new Set();
    this._stores = new Map();
    this._ws = null;
    this._state = "closed";
    this._wantOpen = false;
    this._disconnected = false;
    this._timer = null;
    this._attempt = 0;
    this._binMeta = null; // a _BIN_META waiting for its binary frame
    this._calls = new ActionCalls(this);
    this._echoed = new Set(); // event kinds whose _ERROR carried an id on this connection
    this._ids = null;
    this._offered = false; // this connection's URL and first frame offer protocol 2
    this._protocol = null; // agreed on this connection; null while not known
    this._barrier = false; // a second _HELLO is out: its answer ends the resume (see _sendBarrier)
    // `$id`s of writes, actions and task starts must not repeat across page
    // reloads (the server remembers them per session): a random prefix and a
    // counter, one for all three, since an _ERROR names any of them by id.
    this._idPrefix = callPrefix();
    this._idCount = 0;
    this._serverProtocol = null; // agreed on the last connection that agreed one
    this._offline = false; // the browser said "offline"
    this._idleTimer = null; // liveness: _PING when it fires
    this._pongTimer = null; // liveness: the connection is dead when it fires
    this._pings = 0;
    this._disconnectMessage = null;
    this._onlineEvent = () => this._onOnline();
    this._offlineEvent = () => this._onOffline();
    this._listening = false;
  }

  /** "connecting" | "open" | "reconnecting" | "offline" | "closed" | "disconnected" */
  get state() {
    return this._state;
  }

  /** The server's `_DISCONNECT` message when the state is "disconnected" (taken over); else null. */
  get disconnectMessage() {
    return this._state === "disconnected" ? this._disconnectMessage : null;
  }

  get isOpen() {
    return this._ws !== null && this._ws.readyState === WS_OPEN && this._state === "open";
  }

  /** The protocol of the current connection: 2 (versioned) or 1; null when not connected or not agreed yet. */
  get protocol() {
    return this._state === "open" ? this._protocol : null;
  }

  /** Open the connection (idempotent). Returns `this`. */
  connect() {
    this._wantOpen = true;
    this._disconnected = false;
    this._listen(true);
    if (this._ws === null && this._timer === null && !this._offline) this._open();
    return this;
  }

  /**
   * Reconnect at once, skipping the backoff (and an "offline" or
   * "disconnected" state). A no-op while connected or connecting.
   */
  retryNow() {
    this._offline = false;
    if (this._ws !== null) return this;
    if (this._timer !== null) {
      this._clearTimeout(this._timer);
      this._timer = null;
    }
    this._attempt = 0;
    return this.connect();
  }

  /** Close the connection and stop reconnecting. Unanswered actions and tasks reject with ConnectionError. */
  close() {
    this._wantOpen = false;
    this._listen(false);
    if (this._timer !== null) {
      this._clearTimeout(this._timer);
      this._timer = null;
    }
    const ws = this._ws;
    if (ws) {
      this._ws = null; // its late close event is then ignored
      try {
        ws.close();
      } catch {
        // already closing
      }
      this._afterClose(this._disconnected ? "disconnected by the server" : "session closed");
    } else {
      this._setState(this._disconnected ? "disconnected" : "closed");
    }
  }

  /**
   * Listen to an event type (e.g. "_TOAST", "_SET:NOTES", or a binary event
   * named in `_BIN_META`). Returns an unsubscribe function.
   */
  on(type, handler) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(handler);
    return () => this.off(type, handler);
  }

  off(type, handler) {
    this._handlers.get(type)?.delete(handler);
  }

  /** Listen to connection state changes. Returns an unsubscribe function. */
  subscribeState(listener) {
    this._stateListeners.add(listener);
    return () => this._stateListeners.delete(listener);
  }

  /** Send one event. Returns false (and sends nothing) when not connected. */
  send(type, data) {
    return this._sendText(JSON.stringify({ type, data }));
  }

  /** Unanswered `action()` calls: sent (at most `maxInFlight`) plus waiting to be sent. */
  get pendingActions() {
    return this._calls.size;
  }

  /**
   * Send bytes as a `_BIN_META` text frame followed by one binary frame.
   * For a binary action: `sendBinary("_ACTION:KEY", {type: "UPLOAD", ...}, bytes)`.
   * @returns {boolean} false when not connected
   */
  sendBinary(type, metadata, bytes) {
    if (!this.isOpen) return false;
    this._ws.send(JSON.stringify({ type: "_BIN_META", data: { type, metadata } }));
    this._ws.send(bytes);
    return true;
  }

  /**
   * The synced store for `key`, created on first use; later calls return the
   * same store and ignore `initialState` and `options`.
   * @param {string} key
   * @param {any} [initialState]
   * @param {{offlineEdits?: "queue"|"drop"}} [options]
   */
  store(key, initialState = {}, options = {}) {
    let store = this._stores.get(key);
    if (!store) {
      store = new SyncedStore(this, key, initialState, options);
      this._stores.set(key, store);
      // The server pushes _SET on connect; a store made later asks for it.
      if (this.isOpen) store.fetch();
    }
    return store;
  }

  /** The user and session ids sent in the `_USER_SESSION` handshake. */
  userSession() {
    if (!this._ids) {
      const o = this.options;
      const local = "localStorage" in o ? o.localStorage : globalStorage("localStorage");
      const session = "sessionStorage" in o ? o.sessionStorage : globalStorage("sessionStorage");
      this._ids = {
        user: o.userId ?? storedId(local, `${o.storageKey}:user`),
        session: o.sessionId ?? storedId(session, `${o.storageKey}:session`),
      };
    }
    return this._ids;
  }

  // --- internals -----------------------------------------------------------

  _newId() {
    return `${this._idPrefix}-${++this._idCount}`;
  }

  _newWriteId() {
    return this._newId();
  }

  /** Whether calls made while not connected wait for the connection (else they reject). */
  _queuesCalls() {
    return this.options.offlineActions === "queue" && this._wantOpen && !this._disconnected;
  }

  /** Follow the browser's online/offline events while the session wants to be open. */
  _listen(on) {
    const w = this._window;
    if (on === this._listening || typeof w?.addEventListener !== "function") return;
    this._listening = on;
    const method = on ? "addEventListener" : "removeEventListener";
    w[method]("online", this._onlineEvent);
    w[method]("offline", this._offlineEvent);
  }

  /** Offline: no socket, no retries; calls and edits wait. */
  _onOffline() {
    if (!this._wantOpen) return;
    this._offline = true;
    if (this._timer !== null) {
      this._clearTimeout(this._timer);
      this._timer = null;
    }
    const ws = this._ws;
    if (ws) this._lost(ws);
    else this._setState("offline");
  }

  _onOnline() {
    if (this._wantOpen && this._offline) this.retryNow();
  }

  _sendText(text) {
    if (!this.isOpen) return false;
    this._ws.send(text);
    return true;
  }

  _setState(state) {
    if (state === this._state) return;
    this._state = state;
    this._call(this.options.onStateChange, state);
    for (const listener of [...this._stateListeners]) this._call(listener, state);
  }

  _open() {
    this._timer = null;
    // "connecting" is the first connection only; a later one is a reconnect.
    this._setState(this._state === "closed" || this._state === "connecting" ? "connecting" : "reconnecting");
    const url = this.options.protocol === 2 ? versionedUrl(this.url) : null;
    this._offered = url !== null;
    let ws;
    try {
      ws = new this._WebSocket(url ?? this.url);
    } catch (e) {
      this._call(this.options.onError, { event: "connect", message: String(e?.message ?? e), errors: [] });
      this._afterClose("not connected");
      return;
    }
    this._ws = ws;
    ws.binaryType = "arraybuffer";
    // Events of a socket we have replaced or closed are ignored.
    ws.onopen = () => ws === this._ws && this._onOpen();
    ws.onmessage = (ev) => ws === this._ws && this._onMessage(ev.data);
    // An error counts as the loss itself: what waits for an answer must not
    // depend on a close event following it.
    ws.onclose = ws.onerror = () => ws === this._ws && this._lost(ws);
  }

  _lost(ws) {
    this._ws = null;
    try {
      ws.close();
    } catch {
      // already closed
    }
    this._afterClose("connection lost before the answer");
  }

  _onOpen() {
    this._attempt = 0;
    this._echoed.clear(); // the server may have changed
    this._protocol = this._offered ? null : 1;
    this._barrier = false;
    // Sent before "open" is announced, so it precedes anything a listener sends.
    if (this._offered) this._ws.send(JSON.stringify({ type: "_HELLO", data: { protocol: 2, versions: this._versions() } }));
    this._setState("open");
    for (const store of this._stores.values()) store._onOpen();
    if (!this._offered) this._onResumeEnd();
  }

  /**
   * What waited for this connection goes, after the writes (the server
   * handles frames in order): task starts, then actions; those sent on the
   * last connection go again only to a server that remembers ids.
   */
  _onResumeEnd() {
    for (const store of this._stores.values()) store._sendTasks(this._protocol);
    this._calls.onResumed(this._protocol);
  }

  // --- liveness --------------------------------------------------------------

  /** A frame came in: the connection is alive; ping again after `pingInterval` of silence (protocol 2 only). */
  _alive() {
    this._stopLiveness();
    const ms = this.options.pingInterval;
    if (this._protocol !== 2 || ms === null || ms === undefined) return;
    this._idleTimer = this._setTimeout(() => this._ping(), ms);
  }

  _ping() {
    this._idleTimer = null;
    if (!this.isOpen) return;
    this._ws.send(JSON.stringify({ type: "_PING", data: ++this._pings }));
    const ms = this.options.pingTimeout;
    if (ms === null || ms === undefined) return;
    const ws = this._ws;
    this._pongTimer = this._setTimeout(() => {
      this._pongTimer = null;
      if (ws === this._ws) this._lost(ws); // nothing came back: replace the connection
    }, ms);
  }

  _stopLiveness() {
    if (this._idleTimer !== null) this._clearTimeout(this._idleTimer);
    if (this._pongTimer !== null) this._clearTimeout(this._pongTimer);
    this._idleTimer = this._pongTimer = null;
  }

  /** `{key: {epoch, v}}` of every store holding a confirmed server copy, for `_HELLO`. */
  _versions() {
    const versions = {};
    for (const [key, store] of this._stores) {
      if (store.version !== null && store.epoch !== null) versions[key] = { epoch: store.epoch, v: store.version };
    }
    return versions;
  }

  /** The server's `_HELLO` answer: protocol 2 is on, and stores holding a version resume from it. */
  _onHello(data) {
    if (this._protocol === 2 && this._barrier) return this._onBarrier();
    if (this._protocol !== null) return;
    if (data?.protocol !== 2) return this._fallBack();
    this._protocol = this._serverProtocol = 2;
    this._alive();
    let held = false;
    for (const store of this._stores.values()) held = store._onResume() || held;
    if (held) this._sendBarrier();
    else this._onResumeEnd();
  }

  /**
   * After a reconnect, writes wait for the end of the resume. A write that
   * was in flight when the last connection dropped may have been committed:
   * then its ack is among the resume frames, and sending it again would
   * commit it twice. Edits made offline are best made on the resumed state:
   * after a `_SET` (another epoch, or a history too short) the server can
   * only apply them by position, and what no longer applies is better
   * dropped here than have the server refuse the whole write.
   *
   * The server sends the resume frames of every object before it handles any
   * frame of ours, and answers every `_HELLO`, in order; a second `_HELLO`
   * (nothing to resume: `versions` is empty) is therefore answered after the
   * last resume frame. On its answer a write still without its ack was never
   * committed, and goes again; then the edits made meanwhile go. (A timer
   * could fire before a slow resume: with user sessions the resume waits for
   * `_USER_SESSION`.)
   */
  _sendBarrier() {
    this._barrier = true;
    this._ws.send(JSON.stringify({ type: "_HELLO", data: { protocol: 2, versions: {} } }));
  }

  _onBarrier() {
    this._barrier = false;
    for (const store of this._stores.values()) store._onResumed();
    this._onResumeEnd();
  }

  /** The server does not speak protocol 2: this connection behaves as protocol 1 throughout. */
  _fallBack() {
    if (this._protocol !== null) return;
    this._protocol = this._serverProtocol = 1;
    this._stopLiveness();
    for (const store of this._stores.values()) store._unversion();
    if (this.isOpen) this._onResumeEnd();
  }

  /**
   * The connection is gone. If another follows (the session wants to be
   * open), calls and task starts sent to a server that remembers ids wait
   * to go again; otherwise whatever waits for an answer rejects with `message`.
   */
  _afterClose(message) {
    // A connection that dropped before agreeing a protocol spoke to the same server as the last one.
    const resend = this._offered && (this._protocol ?? this._serverProtocol) === 2;
    this._binMeta = null;
    this._protocol = null;
    this._barrier = false;
    this._stopLiveness();
    const again = this._wantOpen && !this._disconnected && this.options.reconnect;
    if (again) this._calls.onLost(message, resend);
    else this._calls.failAll(message);
    for (const store of this._stores.values()) store._onClose(message, again && resend);
    if (this._disconnected) {
      this._setState("disconnected");
    } else if (again && this._offline) {
      this._setState("offline");
    } else if (again) {
      this._setState("reconnecting");
      this._scheduleReconnect();
    } else {
      this._setState("closed");
    }
  }

  /**
   * Exponential backoff with jitter: the n-th retry waits
   * `min(maxDelay, initialDelay * factor**n)` minus a random share of up to
   * `jitter` of it, so many clients dropped at once do not return at once.
   */
  _scheduleReconnect() {
    const { initialDelay, maxDelay, factor, jitter } = this.options;
    const base = Math.min(maxDelay, initialDelay * factor ** this._attempt);
    const delay = base * (1 - jitter * this._random());
    this._attempt++;
    this._timer = this._setTimeout(() => this._open(), delay);
  }

  _onMessage(raw) {
    if (typeof raw !== "string") {
      this._alive();
      const meta = this._binMeta;
      this._binMeta = null;
      if (!meta) return console.warn("[ws-sync] binary frame without _BIN_META ignored");
      this._emit(meta.type, { ...meta.metadata, data: raw });
      return;
    }
    if (this._binMeta) {
      console.warn("[ws-sync] _BIN_META not followed by a binary frame");
      this._binMeta = null;
    }
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return console.warn("[ws-sync] ignoring a frame that is not JSON");
    }
    this._alive();
    const { type, data } = msg ?? {};
    if (typeof type !== "string") return console.warn("[ws-sync] ignoring a frame without a type");
    // State before the _HELLO answer, without a version: a protocol-1 server.
    if (this._protocol === null && isStateEvent(type) && !Number.isInteger(msg.v)) this._fallBack();
    if (type.startsWith("_ACTION_RESULT:")) this._calls.onResult(data);
    switch (type) {
      case "_BIN_META":
        this._binMeta = { type: data?.type, metadata: data?.metadata ?? {} };
        return;
      case "_DISCONNECT":
        this._disconnected = true;
        this._disconnectMessage = typeof data === "string" ? data : (data?.message ?? String(data ?? ""));
        this._wantOpen = false;
        this._call(this.options.onDisconnect, data);
        break;
      case "_REQUEST_USER_SESSION":
        this.send("_USER_SESSION", this.userSession());
        break;
      case "_HELLO":
        this._onHello(data);
        break;
      case "_TOAST":
        this._call(this.options.onToast, data);
        break;
      case "_DOWNLOAD":
        this._call(this.options.onDownload, data);
        break;
      case "_ERROR":
        // A server without protocol 2 refuses _HELLO as an unknown event: expected, not worth a report.
        if (data?.event === "_HELLO" && this._protocol !== 2) this._fallBack();
        else this._onServerError(data ?? {});
        break;
    }
    this._emit(type, data, msg);
    if (type === "_DISCONNECT") this.close();
  }

  /**
   * Surface an `_ERROR` and reject the call it answers, if any.
   *
   * Matching rule: an `_ERROR` carrying `id` rejects the action or task start
   * sent with that `$id`, whatever its `event`; an id no longer pending (its
   * `_ACTION_RESULT` came first) rejects nothing. An `_ERROR` without `id` is
   * guessed only for servers that never echo ids: it rejects the oldest sent
   * action of its `_ACTION:<key>` event (servers answer in order), or the
   * latest task start of its `_TASK_START:<key>` event. The guess stops for
   * actions at the first `_ERROR` with an id on this connection, and for task
   * starts at the first such `_TASK_START` error (servers that echo action
   * ids may predate echoing task ids): from then on an id-less `_ERROR` comes
   * from a frame without `$id` (`sendAction`, a patch) and must not reject
   * an unrelated call.
   */
  _onServerError(err) {
    this._call(this.options.onError, err);
    const [kind, key] = splitEvent(err.event);
    if (err.id !== undefined && err.id !== null) {
      this._echoed.add(kind);
      this._rejectById(err);
    } else if (kind === "_ACTION" && this._echoed.size === 0) {
      this._calls.rejectOldest(err.event, actionError(err));
    } else if (kind === "_TASK_START" && !this._echoed.has(kind)) {
      this._stores.get(key)?._rejectLatestTask(actionError(err));
    }
  }

  /** The action, task start or local write sent with `$id` `err.id` fails with `err`. */
  _rejectById(err) {
    const error = actionError(err);
    if (this._calls.reject(err.id, error)) return;
    for (const store of this._stores.values()) {
      if (store._rejectTask(err.id, error) || store._rejectWrite(err.id, err)) return;
    }
  }

  /** Handlers get the data and, second, the whole frame (for fields beside `data`, such as `v`). */
  _emit(type, data, frame) {
    const handlers = this._handlers.get(type);
    if (handlers) for (const h of [...handlers]) this._call(h, data, frame);
  }

  /** Run app code; its exceptions must not break the receive loop. */
  _call(fn, arg, arg2) {
    if (typeof fn !== "function") return;
    try {
      fn(arg, arg2);
    } catch (e) {
      console.error("[ws-sync] handler failed", e);
    }
  }
}

// ---------------------------------------------------------------------------
// SyncedStore: the client copy of one synced object
// ---------------------------------------------------------------------------

/**
 * The local copy of one synced object, kept current by `_SET` / `_PATCH`.
 * Create with {@link Session#store}. `getState` and `subscribe` are bound,
 * so they can be passed straight to `useSyncExternalStore`.
 *
 * What the app sees is the server's confirmed state with the local edits
 * not confirmed yet applied on top. Under protocol 2 those are at most one
 * write in flight (sent, not acknowledged) and then a buffer of edits not
 * sent yet. Every server commit is applied to the confirmed state, and the
 * write in flight and the buffer are transformed past it exactly as the
 * server transforms a write (`transform`), so an edit keeps pointing at the
 * item it was made on. The buffer goes out as one write once the write in
 * flight is acknowledged, made on the version the acknowledgement brought:
 * the server then transforms it only past commits this copy has not seen.
 * Under protocol 1, which has no ack, edits are sent as made and count as
 * confirmed once sent.
 */
export class SyncedStore {
  constructor(session, key, initialState, options = {}) {
    this.session = session;
    this.key = key;
    this._offlineEdits = options.offlineEdits;
    this._confirmed = initialState; // the server's copy
    this._base = initialState; // _confirmed with the write in flight applied: what the buffer applies to
    this._state = initialState; // _base with the buffer applied: what the app sees
    this._inflight = null; // the write sent and not acknowledged yet (protocol 2), see _send
    this._buffer = []; // local edits {ops} not sent yet, oldest first
    this._version = null; // version of _confirmed; null when the server does not version it
    this._epoch = null;
    this._listeners = new Set();
    this._synced = false; // a _SET arrived, or the store resumed, on the current connection
    this._awaitingSet = false; // we asked for _SET; patches until then are stale
    this._pendingTasks = []; // {id, type, text, onWire, sent, resolve, reject}, oldest first
    this._tasks = new Map(); // task type -> {running, progress}, as last heard
    this._taskListeners = new Set();
    this._progress = new Map(); // task type -> Set<cb>
    this._done = new Map(); // task type -> Set<cb>
    this._actionHandlers = new Map(); // server-to-client action type -> handler
    this.getState = this.getState.bind(this);
    this.subscribe = this.subscribe.bind(this);

    const on = (prefix, fn) => session.on(`${prefix}:${key}`, fn);
    on("_SET", (d, frame) => this._onSet(d, frame));
    on("_PATCH", (d, frame) => this._onPatch(d, frame));
    on("_ACTION", (d) => this._onAction(d));
    on("_TASK_PROGRESS", (d) => this._onTaskProgress(d));
    on("_TASK_DONE", (d) => this._onTaskDone(d));
  }

  getState() {
    return this._state;
  }

  /** Call `listener()` after every state change. Returns an unsubscribe function. */
  subscribe(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  /** Whether the state came from the server on the current connection (a `_SET`, or a protocol-2 resume). */
  get synced() {
    return this._synced;
  }

  /**
   * Local edits not sent yet: made offline or before the first `_SET`, waiting
   * behind the write in flight, or lost with a connection before their ack.
   */
  get pendingEdits() {
    return (this._held() ? this._inflight.edits : 0) + this._buffer.length;
  }

  /** Local edits the server has not confirmed yet: not sent, or sent and awaiting their ack (protocol 2). */
  get pending() {
    const w = this._inflight;
    return (w !== null && w.ackV === undefined ? w.edits : 0) + this._buffer.length;
  }

  /** The server's version of the confirmed state; null when the server does not version this object. */
  get version() {
    return this._version;
  }

  /** The epoch of `version` (a new epoch restarts the numbering); null when unversioned. */
  get epoch() {
    return this._epoch;
  }

  /** The last state the server confirmed, without the pending local edits. */
  get confirmedState() {
    return this._confirmed;
  }

  /** Ask the server for the full state (`_GET`); patches are ignored until it arrives. */
  fetch() {
    if (this.session.send(`_GET:${this.key}`, {})) this._awaitingSet = true;
  }

  // --- local edits ---------------------------------------------------------

  /**
   * Set the value at `path` (JSON Pointer or segments), as an RFC 6902 `replace`
   * if it exists, else `add` (so `/list/-` appends). Optimistic: applied at
   * once, then sent. Returns false if the edit was dropped (offline, "drop").
   */
  set(path, value) {
    const segments = parsePointer(path);
    if (segments.length === 0) return this.update(() => value);
    const op = hasAt(this._state, segments) ? "replace" : "add";
    return this.patch([{ op, path: formatPointer(segments), value }]);
  }

  /**
   * Replace the state with `fn(state)`, which must return a new state and
   * leave the old one untouched (immutable update). The difference is sent as
   * a `_PATCH`; nothing is sent when nothing changed.
   */
  update(fn) {
    const next = fn(this._state);
    if (next === undefined) throw new TypeError("update(fn): fn must return the new state");
    const ops = diff(this._state, next);
    return ops.length === 0 ? true : this._commit(next, ops);
  }

  /** Apply RFC 6902 `ops` locally (throws PatchError if they do not apply) and send them. */
  patch(ops) {
    return this._commit(applyPatch(this._state, ops), ops);
  }

  _commit(next, ops) {
    if (!this.session.isOpen && (this._offlineEdits ?? this.session.options.offlineEdits) === "drop") {
      this._dropped(ops, "offline");
      return false;
    }
    this._buffer.push({ ops: this._version === null ? ops : resolveAppends(this._state, ops) });
    this._state = next;
    this._flush();
    this._notify();
    return true;
  }

  /**
   * Send what can go, once positions mean the same on the server: for a
   * versioned store, the buffer as one write once the connection speaks
   * protocol 2, the resume is in and no write is in flight; otherwise every
   * edit as made, once a `_SET` arrived on this connection.
   */
  _flush() {
    const session = this.session;
    if (!session.isOpen) return;
    if (this._version === null) return this._flushUnversioned();
    if (session._protocol === 2 && !session._barrier && this._inflight === null && this._buffer.length > 0) this._send();
  }

  /** Protocol 1 has no ack: an edit counts as confirmed once it is sent. */
  _flushUnversioned() {
    if (!this._synced) return;
    for (const edit of this._buffer) this.session.send(`_PATCH:${this.key}`, edit.ops);
    this._buffer = [];
    this._confirmed = this._base = this._state;
  }

  /** The buffer becomes the write in flight. */
  _send() {
    this._inflight = {
      id: this.session._newWriteId(),
      ops: resolveAppends(this._base, this._buffer.flatMap((edit) => edit.ops)), // as transformed since: what the app sees
      edits: this._buffer.length,
      frame: null, // the text sent, see _transmit
      onWire: false, // sent on the current connection
      ackV: undefined, // the version its ack brought, while the confirmed state is not there yet
    };
    this._buffer = [];
    this._base = this._state;
    this._transmit();
  }

  /**
   * Send the write in flight: its ops, the confirmed version and epoch they
   * apply to (the server transforms them past its commits since) and its
   * `$id`, which the ack or `_ERROR` names. A write sent again after a
   * reconnect is the same frame, unless a `_SET` replaced the state it was
   * made on meanwhile: then it goes as it applies now, on the new version.
   * `sent`, `at` and `gone` map the ops to the indexes of the frame, which
   * the ack's `dropped` names.
   */
  _transmit() {
    const w = this._inflight;
    if (w.frame === null) {
      const envelope = { type: `_PATCH:${this.key}`, data: w.ops, v: this._version, epoch: this._epoch, $id: w.id };
      Object.assign(w, { frame: JSON.stringify(envelope), sent: w.ops, at: w.ops.map((_, i) => i), gone: new Set() });
    }
    w.onWire = this.session._sendText(w.frame);
  }

  /** A write in flight on a connection that is gone, and not acknowledged: it must be sent again. */
  _held() {
    const w = this._inflight;
    return w !== null && !w.onWire && w.ackV === undefined;
  }

  /** Roll back the write in flight, `$id` `id`, which the server refused. False if it is not ours. */
  _rejectWrite(id, error) {
    const w = this._inflight;
    if (w === null || w.id !== id || w.ackV !== undefined) return false;
    this._inflight = null;
    this._dropped(w.ops, "rejected", error);
    this._rebuild();
    this._flush();
    this._notify();
    return true;
  }

  _dropped(ops, reason, error) {
    this.session._call(this.session.options.onEditsDropped, { key: this.key, ops, reason, error });
  }

  // --- actions and tasks ---------------------------------------------------

  /**
   * Call a server action and wait for its `_ACTION_RESULT`.
   * Rejects with ActionError (`ok: false`, or an `_ERROR` with its id) or
   * ConnectionError (not connected, or the connection ended first). With
   * `maxInFlight` actions unanswered the call waits its turn before it is sent.
   */
  action(type, params = {}) {
    return this.session._calls.call(`_ACTION:${this.key}`, type, params);
  }

  /** Fire-and-forget action without `$id` (servers without the extension). Returns false if not sent. */
  sendAction(type, params = {}) {
    return this.session.send(`_ACTION:${this.key}`, { type, ...params });
  }

  /** Call an action whose `data` parameter is `bytes` (fire-and-forget). */
  sendBinaryAction(type, params, bytes) {
    return this.session.sendBinary(`_ACTION:${this.key}`, { type, ...params }, bytes);
  }

  /**
   * Start a server task; the start carries a `$id` so that a refusal
   * (`_ERROR` with that id) rejects this task's `done`. `done` resolves with
   * the `_TASK_DONE` data (whatever its status), or rejects with ActionError
   * (start refused) or ConnectionError. `cancel()` cancels the task.
   */
  startTask(type, params = {}) {
    const session = this.session;
    const id = session._newId();
    const text = JSON.stringify({ type: `_TASK_START:${this.key}`, data: { type, ...params, $id: id } });
    const entry = { id, type, text, onWire: false, sent: false };
    const done = new Promise((resolve, reject) => Object.assign(entry, { resolve, reject }));
    done.catch(() => {}); // callers often ignore `done`; not an unhandled rejection
    // Behind starts still waiting for the resume, or queued while offline (`offlineActions`).
    const now = session.isOpen && !session._barrier && this._pendingTasks.every((t) => t.onWire);
    if (now) this._transmitTask(entry);
    if (entry.onWire || (!now && (session.isOpen || session._queuesCalls()))) {
      this._pendingTasks.push(entry);
      this._setTask(type, { running: true, progress: this.task(type).progress });
    } else {
      entry.reject(new ConnectionError(`not connected: task ${type} not started`));
    }
    return { done, cancel: () => this.cancelTask(type) };
  }

  _transmitTask(entry) {
    entry.onWire = this.session._sendText(entry.text);
    entry.sent ||= entry.onWire;
  }

  /**
   * The resume is in: task starts waiting go. One sent on the last connection
   * goes again (same `$id`) only to a server that remembers ids; it may have
   * started, so elsewhere it rejects.
   */
  _sendTasks(protocol) {
    for (const entry of [...this._pendingTasks]) {
      if (entry.onWire) continue;
      if (entry.sent && protocol !== 2) this._rejectTask(entry.id, new ConnectionError("connection lost before the task started"));
      else this._transmitTask(entry);
    }
  }

  /**
   * What this client last heard of task `type`: `running` from its start (or
   * any `_TASK_PROGRESS`, such as the one a resumed connection gets for a task
   * still running) until its `_TASK_DONE` or refusal; `progress`, its last
   * value. The object is new on each change.
   */
  task(type) {
    return this._tasks.get(type) ?? IDLE_TASK;
  }

  /** Call `listener(type, task)` whenever `task(type)` changes. Returns an unsubscribe function. */
  subscribeTasks(listener) {
    this._taskListeners.add(listener);
    return () => this._taskListeners.delete(listener);
  }

  _setTask(type, task) {
    const old = this.task(type);
    if (old.running === task.running && old.progress === task.progress) return;
    if (!task.running && task.progress === undefined) this._tasks.delete(type);
    else this._tasks.set(type, task);
    for (const listener of [...this._taskListeners]) this.session._call(() => listener(type, this.task(type)));
  }

  cancelTask(type) {
    return this.session.send(`_TASK_CANCEL:${this.key}`, { type });
  }

  /** `cb(value, data)` for each `_TASK_PROGRESS` of task `type`. Returns an unsubscribe function. */
  onTaskProgress(type, cb) {
    return addTo(this._progress, type, cb);
  }

  /** `cb(data)` for each `_TASK_DONE` of task `type`. Returns an unsubscribe function. */
  onTaskDone(type, cb) {
    return addTo(this._done, type, cb);
  }

  /** Handle the server's `_ACTION` `type` with `handler(params)`. Returns an unsubscribe function. */
  onAction(type, handler) {
    this._actionHandlers.set(type, handler);
    return () => {
      if (this._actionHandlers.get(type) === handler) this._actionHandlers.delete(type);
    };
  }

  // --- inbound events ------------------------------------------------------

  /** The `v` of a server frame, or null when the frame (or the connection) is unversioned. */
  _versionOf(frame) {
    return this.session._protocol !== 1 && Number.isInteger(frame?.v) ? frame.v : null;
  }

  /**
   * A whole state: the confirmed state anew. The write in flight stays in
   * flight (its ack is still to come) and the buffer stays: both are
   * re-applied by position, as there is no history to transform them past.
   */
  _onSet(state, frame) {
    this._synced = true;
    this._awaitingSet = false;
    const v = this._versionOf(frame);
    // The answer to our write sent again after its commit left the history:
    // this state holds it.
    const w = this._inflight;
    if (w !== null && v !== null && frame.ack !== undefined && frame.ack === w.id) w.ackV ??= v;
    if (v === null) this._unversion();
    else this._setVersion(v, typeof frame.epoch === "string" ? frame.epoch : null);
    this._confirmed = state;
    this._rebuild();
    this._flush();
    this._notify();
  }

  _setVersion(v, epoch) {
    const w = this._inflight;
    if (w !== null && w.ackV !== undefined && (v >= w.ackV || epoch !== this._epoch)) {
      this._inflight = null; // acknowledged, and in this state (or in a line of versions that has ended)
    } else if (w !== null) {
      w.frame = null; // a resend cannot be transformed from its version any more
    }
    this._version = v;
    this._epoch = epoch;
  }

  /**
   * A versioned patch applies to version `v - 1`. An older one is in this
   * copy already (a resume may repeat it); a newer one means patches were
   * missed, so the whole state is fetched. One whose `ack` names our write in
   * flight is that write as committed; any other moves the write in flight
   * and the buffer past it.
   */
  _onPatch(ops, frame) {
    const v = this._versionOf(frame);
    if (v === null) return this._onUnversionedPatch(ops);
    if (this._inflight !== null && frame.ack !== undefined && frame.ack === this._inflight.id) return this._onAck(ops, frame, v);
    if (this._awaitingSet) return; // a full state is on its way
    if (this._version === null || v > this._version + 1) return this._resync(v);
    if (v <= this._version) return;
    if (!this._rebaseOver(ops)) return;
    this._version = v;
    this._rebuild();
    this._notify();
  }

  _resync(v) {
    console.warn(`[ws-sync] ${this.key}: missed patches (at version ${this._version}, got ${v}); resyncing`);
    this.fetch();
  }

  /**
   * Our write in flight, committed at `v` as `ops` (transformed and coerced
   * by the server). It replaces the write in flight in the confirmed state,
   * and the buffer, which was made on top of it, goes next. Until the
   * confirmed state reaches `v` (a `_SET` is awaited) it stays, acknowledged.
   */
  _onAck(ops, frame, v) {
    const w = this._inflight;
    if (w.ackV === undefined) this._reportServerDrops(w, frame.dropped);
    w.ackV = v;
    if (this._awaitingSet) return;
    if (v > this._version + 1) return this._resync(v);
    if (v === this._version + 1) {
      if (!this._applyToConfirmed(ops)) return;
      this._version = v;
    }
    this._inflight = null; // v <= version: a _SET after the commit holds it already
    this._rebuild();
    this._flush();
    this._notify();
  }

  /** The ops the server's transform dropped (`dropped`: indexes in the write as sent), not reported here already. */
  _reportServerDrops(w, dropped) {
    if (!Array.isArray(dropped)) return;
    const ops = dropped.filter((i) => Number.isInteger(i) && i >= 0 && i < w.sent.length && !w.gone.has(i)).map((i) => w.sent[i]);
    if (ops.length > 0) this._dropped(ops, "conflict");
  }

  /**
   * Apply a server commit to the confirmed state, and move the write in
   * flight past it, as the server will when the write arrives after it; then
   * move the buffer past the commit as carried past the write in flight.
   * Containers are read from the documents the ops were made on.
   */
  _rebaseOver(ops) {
    const before = this._confirmed;
    const base = this._base;
    if (!this._applyToConfirmed(ops)) return false;
    let carried = ops;
    const w = this._inflight;
    if (w !== null) {
      const r = transform(w.ops, ops, listsOf(before));
      this._dropFromInflight(w, r.dropped);
      w.ops = r.ops;
      carried = r.committed;
    }
    if (this._buffer.length > 0) this._buffer = this._rebaseBuffer(carried, listsOf(base));
    return true;
  }

  /** Forget the ops at `indexes` of the write in flight (the server drops them too), reporting them. */
  _dropFromInflight(w, indexes, error) {
    if (indexes.length === 0) return;
    this._dropped(indexes.map((i) => w.ops[i]), "conflict", error);
    for (const i of indexes) w.gone.add(w.at[i]);
    const kept = new Set(w.ops.keys());
    for (const i of indexes) kept.delete(i);
    w.ops = w.ops.filter((_, i) => kept.has(i));
    w.at = w.at.filter((_, i) => kept.has(i));
  }

  /** The buffer transformed past `committed`, edit after edit; dropped ops are reported. */
  _rebaseBuffer(committed, isList) {
    const kept = [];
    const lost = [];
    let steps = committed;
    for (const edit of this._buffer) {
      const r = transform(edit.ops, steps, isList);
      steps = r.committed;
      for (const i of r.dropped) lost.push(edit.ops[i]);
      if (r.ops.length > 0) kept.push({ ops: r.ops });
    }
    if (lost.length > 0) this._dropped(lost, "conflict");
    return kept;
  }

  _onUnversionedPatch(ops) {
    if (this._version !== null) this._unversion();
    if (this._awaitingSet) return; // a full state is on its way
    if (!this._applyToConfirmed(ops)) return;
    this._rebuild();
    this._notify();
  }

  /** Apply server ops to the confirmed state; if they do not apply, fetch the whole state instead. */
  _applyToConfirmed(ops) {
    try {
      this._confirmed = applyPatch(this._confirmed, ops);
      return true;
    } catch (e) {
      console.warn(`[ws-sync] ${this.key}: patch does not apply (${e.message}); resyncing`);
      this.fetch();
      return false;
    }
  }

  /**
   * The app's view: the confirmed state, the write in flight, the buffer.
   * What no longer applies is dropped and reported: an op of the write in
   * flight (the server would refuse the whole write), an edit of the buffer.
   */
  _rebuild() {
    let state = this._confirmed;
    if (this._inflight !== null) state = this._applyInflight(state, this._inflight);
    this._base = state;
    this._buffer = this._buffer.filter((edit) => {
      try {
        state = applyPatch(state, edit.ops);
        return true;
      } catch (error) {
        this._dropped(edit.ops, "conflict", error);
        return false;
      }
    });
    this._state = state;
  }

  _applyInflight(state, w) {
    try {
      return applyPatch(state, w.ops);
    } catch {
      // find the ops that do not apply, below
    }
    const failed = [];
    let error;
    w.ops.forEach((op, i) => {
      try {
        state = applyPatch(state, [op]);
      } catch (e) {
        failed.push(i);
        error ??= e;
      }
    });
    this._dropFromInflight(w, failed, error);
    return state;
  }

  /**
   * Forget the version (the server or this object is unversioned). Protocol 1
   * has no ack, so a write already sent counts as confirmed; one never sent
   * on this connection goes first in the buffer, to be sent as made.
   */
  _unversion() {
    this._version = this._epoch = null;
    const w = this._inflight;
    this._inflight = null;
    if (w !== null && (w.onWire || w.ackV !== undefined)) {
      try {
        this._confirmed = applyPatch(this._confirmed, w.ops);
      } catch {
        // it was dropped from the view already
      }
    } else if (w !== null) {
      this._buffer.unshift({ ops: w.ops });
    }
    this._base = this._confirmed;
  }

  /**
   * The `_HELLO` answer: protocol 2 is on, and a store holding a version
   * resumes from it (the server sends what it missed). True if it has writes
   * to send, which wait for the end of the resume (Session#_sendBarrier).
   */
  _onResume() {
    if (this._version === null) return false;
    this._synced = true;
    return this._held() || this._buffer.length > 0;
  }

  /** The resume frames are in: a write still held was never committed, and goes again; else the buffer goes. */
  _onResumed() {
    if (this._held()) this._transmit();
    else this._flush();
  }

  _onAction(data) {
    const { type, ...params } = data ?? {};
    const handler = this._actionHandlers.get(type);
    if (handler) handler(params);
    else console.warn(`[ws-sync] ${this.key}: no handler for server action ${type}`);
  }

  _onTaskProgress(data) {
    this._setTask(data?.type, { running: true, progress: data?.value });
    for (const cb of [...(this._progress.get(data?.type) ?? [])]) this.session._call(() => cb(data.value, data));
  }

  _onTaskDone(data) {
    this._setTask(data?.type, { running: false, progress: this.task(data?.type).progress });
    const i = this._pendingTasks.findIndex((t) => t.type === data?.type);
    if (i >= 0) this._pendingTasks.splice(i, 1)[0].resolve(data);
    for (const cb of [...(this._done.get(data?.type) ?? [])]) this.session._call(() => cb(data));
  }

  /** Reject the task start sent with `$id` `id`. False if none is pending. */
  _rejectTask(id, error) {
    const i = this._pendingTasks.findIndex((t) => t.id === id);
    if (i >= 0) this._failTask(this._pendingTasks.splice(i, 1)[0], error);
    return i >= 0;
  }

  /** An id-less refusal (servers that do not echo ids): the server refuses starts as they arrive. */
  _rejectLatestTask(error) {
    const entry = this._pendingTasks.pop();
    if (entry) this._failTask(entry, error);
  }

  _failTask(entry, error) {
    if (!this._pendingTasks.some((t) => t.type === entry.type)) this._setTask(entry.type, { running: false, progress: this.task(entry.type).progress });
    entry.reject(error);
  }

  _onOpen() {
    if (this.session.options.getOnConnect) this.fetch();
  }

  /**
   * The connection is gone. `again`: another follows, to a server that
   * remembers ids: task starts wait to go again (and tasks stay "running",
   * no idle flash); otherwise they reject, and those queued offline wait
   * only under `offlineActions: "queue"`.
   */
  _onClose(message, again) {
    this._synced = false;
    this._awaitingSet = false;
    // State, version, the write in flight and the buffer stay for the resume;
    // a write not acknowledged goes again on the next connection, same $id.
    if (this._inflight !== null && this._inflight.ackV === undefined) this._inflight.onWire = false;
    const queue = this.session._queuesCalls();
    for (const entry of [...this._pendingTasks]) {
      entry.onWire = false;
      if (!again && (entry.sent || !queue)) this._rejectTask(entry.id, new ConnectionError(message));
    }
    if (!again) for (const [type, task] of this._tasks) if (!this._pendingTasks.some((t) => t.type === type)) this._setTask(type, { running: false, progress: task.progress });
  }

  _notify() {
    for (const listener of [...this._listeners]) this.session._call(listener);
  }
}

const IDLE_TASK = Object.freeze({ running: false, progress: undefined });

function addTo(map, type, cb) {
  if (!map.has(type)) map.set(type, new Set());
  map.get(type).add(cb);
  return () => map.get(type)?.delete(cb);
}
