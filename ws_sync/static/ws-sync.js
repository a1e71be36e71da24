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
 * Every outbound text frame is `JSON.stringify({type, data})`. Every action or
 * task-start promise settles exactly once: on its answer, or with a
 * ConnectionError when the connection ends first. At most `maxInFlight`
 * actions await their answer at once; later calls wait in order.
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

function randomId() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  // randomUUID exists only in secure contexts (https, localhost).
  const bytes = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
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

const DEFAULTS = {
  reconnect: true,
  initialDelay: 500,
  maxDelay: 30_000,
  factor: 2,
  jitter: 0.5,
  offlineEdits: "queue",
  getOnConnect: false,
  maxInFlight: 32,
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
 * answers come in. Ids are unique per session, so answers are matched by id
 * alone.
 */
class ActionCalls {
  constructor(session) {
    this.session = session;
    this._inFlight = new Map(); // $id -> entry, oldest sent first
    this._waiting = []; // entries not sent yet, FIFO
  }

  /** Send `{type, ...params, $id}` as `event` (or queue it); a Promise of the result. */
  call(event, type, params) {
    return new Promise((resolve, reject) => {
      const id = this.session._newId();
      // Serialized now: a bad param throws to this caller, not to whichever
      // answer later sends the frame.
      const text = JSON.stringify({ type: event, data: { type, ...params, $id: id } });
      const entry = { id, event, type, text, resolve, reject };
      if (!this.session.isOpen) reject(new ConnectionError(`not connected: action ${type} not sent`));
      else if (this._waiting.length > 0 || this._inFlight.size >= this.session.options.maxInFlight) this._waiting.push(entry);
      else this._transmit(entry);
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

  /** The connection ended: every call, sent or waiting, rejects. */
  failAll(message) {
    const all = [...this._inFlight.values(), ...this._waiting];
    this._inFlight.clear();
    this._waiting = [];
    for (const entry of all) entry.reject(new ConnectionError(message));
  }

  /** Remove and return the sent entry `id` (or null), letting a waiting call take its slot. */
  _take(id) {
    const entry = this._inFlight.get(id);
    if (!entry) return null;
    this._inFlight.delete(id);
    this._pump();
    return entry;
  }

  _pump() {
    while (this._waiting.length > 0 && this._inFlight.size < this.session.options.maxInFlight) {
      this._transmit(this._waiting.shift());
    }
  }

  _transmit(entry) {
    let sent;
    try {
      sent = this.session._sendText(entry.text);
    } catch (e) {
      entry.reject(e);
      return;
    }
    if (sent) this._inFlight.set(entry.id, entry);
    else entry.reject(new ConnectionError(`not connected: action ${entry.type} not sent`));
  }
}

// ---------------------------------------------------------------------------
// Session: one WebSocket, reconnects, routes events
// ---------------------------------------------------------------------------

/**
 * One WebSocket connection to a ws-sync server, reconnecting on loss.
 *
 * States: "connecting" → "open" → "closed" (lost: a reconnect is scheduled
 * unless `close()` was called) or "disconnected" (the server sent
 * `_DISCONNECT`; no reconnect until `connect()` is called again).
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
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._setTimeout = options.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout ?? ((t) => globalThis.clearTimeout(t));
    this._random = options.random ?? Math.random;
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
    this._lastId = 0; // `$id`s of actions and task starts, unique per session
    this._calls = new ActionCalls(this);
    this._echoed = new Set(); // event kinds whose _ERROR carried an id on this connection
    this._ids = null;
  }

  /** "connecting" | "open" | "closed" | "disconnected" */
  get state() {
    return this._state;
  }

  get isOpen() {
    return this._ws !== null && this._ws.readyState === WS_OPEN && this._state === "open";
  }

  /** Open the connection (idempotent). Returns `this`. */
  connect() {
    this._wantOpen = true;
    this._disconnected = false;
    if (this._ws === null && this._timer === null) this._open();
    return this;
  }

  /** Close the connection and stop reconnecting. Unanswered actions and tasks reject with ConnectionError. */
  close() {
    this._wantOpen = false;
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
    return ++this._lastId;
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
    this._setState("connecting");
    let ws;
    try {
      ws = new this._WebSocket(this.url);
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
    this._setState("open");
    for (const store of this._stores.values()) store._onOpen();
  }

  /** The connection is gone: whatever waits for an answer on it rejects with `message`. */
  _afterClose(message) {
    this._binMeta = null;
    this._calls.failAll(message);
    for (const store of this._stores.values()) store._onClose(message);
    if (this._disconnected) {
      this._setState("disconnected");
    } else {
      this._setState("closed");
      if (this._wantOpen && this.options.reconnect) this._scheduleReconnect();
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
    const { type, data } = msg ?? {};
    if (typeof type !== "string") return console.warn("[ws-sync] ignoring a frame without a type");
    if (type.startsWith("_ACTION_RESULT:")) this._calls.onResult(data);
    switch (type) {
      case "_BIN_META":
        this._binMeta = { type: data?.type, metadata: data?.metadata ?? {} };
        return;
      case "_DISCONNECT":
        this._disconnected = true;
        this._wantOpen = false;
        this._call(this.options.onDisconnect, data);
        break;
      case "_REQUEST_USER_SESSION":
        this.send("_USER_SESSION", this.userSession());
        break;
      case "_TOAST":
        this._call(this.options.onToast, data);
        break;
      case "_DOWNLOAD":
        this._call(this.options.onDownload, data);
        break;
      case "_ERROR":
        this._onServerError(data ?? {});
        break;
    }
    this._emit(type, data);
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
      this._rejectById(err.id, actionError(err));
    } else if (kind === "_ACTION" && this._echoed.size === 0) {
      this._calls.rejectOldest(err.event, actionError(err));
    } else if (kind === "_TASK_START" && !this._echoed.has(kind)) {
      this._stores.get(key)?._rejectLatestTask(actionError(err));
    }
  }

  _rejectById(id, error) {
    if (this._calls.reject(id, error)) return;
    for (const store of this._stores.values()) if (store._rejectTask(id, error)) return;
  }

  _emit(type, data) {
    const handlers = this._handlers.get(type);
    if (handlers) for (const h of [...handlers]) this._call(h, data);
  }

  /** Run app code; its exceptions must not break the receive loop. */
  _call(fn, arg) {
    if (typeof fn !== "function") return;
    try {
      fn(arg);
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
 */
export class SyncedStore {
  constructor(session, key, initialState, options = {}) {
    this.session = session;
    this.key = key;
    this._offlineEdits = options.offlineEdits;
    this._state = initialState;
    this._listeners = new Set();
    this._synced = false; // a _SET arrived on the current connection
    this._awaitingSet = false; // we asked for _SET; patches until then are stale
    this._queue = []; // local edits (op arrays) waiting for the next _SET
    this._pendingTasks = []; // {id, type, resolve, reject}, oldest first
    this._progress = new Map(); // task type -> Set<cb>
    this._done = new Map(); // task type -> Set<cb>
    this._actionHandlers = new Map(); // server-to-client action type -> handler
    this.getState = this.getState.bind(this);
    this.subscribe = this.subscribe.bind(this);

    const on = (prefix, fn) => session.on(`${prefix}:${key}`, fn);
    on("_SET", (d) => this._onSet(d));
    on("_PATCH", (d) => this._onPatch(d));
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

  /** Whether the state came from the server on the current connection. */
  get synced() {
    return this._synced;
  }

  /** Local edits not yet sent (made offline or before the first `_SET`). */
  get pendingEdits() {
    return this._queue.length;
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
    const online = this.session.isOpen;
    if (!online && (this._offlineEdits ?? this.session.options.offlineEdits) === "drop") {
      this._dropped(ops, "offline");
      return false;
    }
    this._state = next;
    // Sent only on top of a server state of this connection; otherwise queued
    // and replayed on the next _SET, so the patch lands where it was meant.
    if (!(online && this._synced && this.session.send(`_PATCH:${this.key}`, ops))) this._queue.push(ops);
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
    const entry = { id: this.session._newId(), type };
    const done = new Promise((resolve, reject) => Object.assign(entry, { resolve, reject }));
    done.catch(() => {}); // callers often ignore `done`; not an unhandled rejection
    if (this.session.send(`_TASK_START:${this.key}`, { type, ...params, $id: entry.id })) this._pendingTasks.push(entry);
    else entry.reject(new ConnectionError(`not connected: task ${type} not started`));
    return { done, cancel: () => this.cancelTask(type) };
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

  _onSet(state) {
    this._synced = true;
    this._awaitingSet = false;
    const queued = this._queue;
    this._queue = [];
    for (const ops of queued) {
      try {
        state = applyPatch(state, ops);
      } catch (error) {
        this._dropped(ops, "conflict", error); // no longer applies to the server's state
        continue;
      }
      if (!this.session.send(`_PATCH:${this.key}`, ops)) this._queue.push(ops);
    }
    this._state = state;
    this._notify();
  }

  _onPatch(ops) {
    if (this._awaitingSet) return; // a full state is on its way
    try {
      this._state = applyPatch(this._state, ops);
    } catch (e) {
      console.warn(`[ws-sync] ${this.key}: patch does not apply (${e.message}); resyncing`);
      this.fetch();
      return;
    }
    this._notify();
  }

  _onAction(data) {
    const { type, ...params } = data ?? {};
    const handler = this._actionHandlers.get(type);
    if (handler) handler(params);
    else console.warn(`[ws-sync] ${this.key}: no handler for server action ${type}`);
  }

  _onTaskProgress(data) {
    for (const cb of [...(this._progress.get(data?.type) ?? [])]) this.session._call(() => cb(data.value, data));
  }

  _onTaskDone(data) {
    const i = this._pendingTasks.findIndex((t) => t.type === data?.type);
    if (i >= 0) this._pendingTasks.splice(i, 1)[0].resolve(data);
    for (const cb of [...(this._done.get(data?.type) ?? [])]) this.session._call(() => cb(data));
  }

  /** Reject the task start sent with `$id` `id`. False if none is pending. */
  _rejectTask(id, error) {
    const i = this._pendingTasks.findIndex((t) => t.id === id);
    if (i >= 0) this._pendingTasks.splice(i, 1)[0].reject(error);
    return i >= 0;
  }

  /** An id-less refusal (servers that do not echo ids): the server refuses starts as they arrive. */
  _rejectLatestTask(error) {
    this._pendingTasks.pop()?.reject(error);
  }

  _onOpen() {
    if (this.session.options.getOnConnect) this.fetch();
  }

  _onClose(message) {
    this._synced = false;
    this._awaitingSet = false;
    for (const { reject } of this._pendingTasks.splice(0)) reject(new ConnectionError(message));
  }

  _notify() {
    for (const listener of [...this._listeners]) this.session._call(listener);
  }
}

function addTo(map, type, cb) {
  if (!map.has(type)) map.set(type, new Set());
  map.get(type).add(cb);
  return () => map.get(type)?.delete(cb);
}
