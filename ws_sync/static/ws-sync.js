/**
 * ws-sync browser client.
 *
 * Keeps a local copy of server-side Python objects in sync over one WebSocket
 * (see PROTOCOL.md). Zero dependencies; an ES module for modern browsers and
 * Node >= 20.
 *
 *   const session = new Session("wss://example.org/ws").connect();
 *   const notes = session.store("NOTES", { title: "", notes: [] });
 *   notes.subscribe(() => render(notes.getState()));
 *   await notes.action("RENAME", { new_title: "Groceries" });
 *
 * Every outbound text frame is `JSON.stringify({type, data})`.
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
  storageKey: "ws-sync",
  onStateChange: null,
  onError: (err) => console.warn(`[ws-sync] ${err.event ?? "error"}: ${err.message}`, err),
  onDisconnect: (message) => console.warn(`[ws-sync] disconnected by the server: ${message}`),
  onToast: defaultToast,
  onDownload: defaultDownload,
  onEditsDropped: ({ key, ops, reason }) => console.warn(`[ws-sync] ${key}: local edit dropped (${reason})`, ops),
};

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
    this._nextActionId = 1;
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

  /** Close the connection and stop reconnecting. In-flight actions and tasks reject. */
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
      this._afterClose();
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
    if (!this.isOpen) return false;
    this._ws.send(JSON.stringify({ type, data }));
    return true;
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
      this._afterClose();
      return;
    }
    this._ws = ws;
    ws.binaryType = "arraybuffer";
    // Events of a socket we have replaced or closed are ignored.
    ws.onopen = () => ws === this._ws && this._onOpen();
    ws.onmessage = (ev) => ws === this._ws && this._onMessage(ev.data);
    ws.onclose = () => {
      if (ws !== this._ws) return;
      this._ws = null;
      this._afterClose();
    };
    ws.onerror = () => {}; // a close event always follows
  }

  _onOpen() {
    this._attempt = 0;
    this._setState("open");
    for (const store of this._stores.values()) store._onOpen();
  }

  _afterClose() {
    this._binMeta = null;
    for (const store of this._stores.values()) store._onClose();
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

  /** Surface an `_ERROR` and let the store it concerns reject what it affects. */
  _onServerError(err) {
    this._call(this.options.onError, err);
    const event = typeof err.event === "string" ? err.event : "";
    const colon = event.indexOf(":");
    if (colon < 0) return;
    this._stores.get(event.slice(colon + 1))?._onServerError(event.slice(0, colon), err);
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
    this._pendingActions = new Map(); // $id -> {resolve, reject}, oldest first
    this._pendingTasks = []; // {type, resolve, reject}, oldest first
    this._progress = new Map(); // task type -> Set<cb>
    this._done = new Map(); // task type -> Set<cb>
    this._actionHandlers = new Map(); // server-to-client action type -> handler
    this.getState = this.getState.bind(this);
    this.subscribe = this.subscribe.bind(this);

    const on = (prefix, fn) => session.on(`${prefix}:${key}`, fn);
    on("_SET", (d) => this._onSet(d));
    on("_PATCH", (d) => this._onPatch(d));
    on("_ACTION", (d) => this._onAction(d));
    on("_ACTION_RESULT", (d) => this._onActionResult(d));
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
   * Rejects with ActionError (server error) or ConnectionError (not sent, or
   * the connection closed first).
   */
  action(type, params = {}) {
    const id = this.session._nextActionId++;
    return new Promise((resolve, reject) => {
      if (!this.session.send(`_ACTION:${this.key}`, { type, ...params, $id: id })) {
        reject(new ConnectionError(`not connected: action ${type} not sent`));
        return;
      }
      this._pendingActions.set(id, { resolve, reject });
    });
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
   * Start a server task. `done` resolves with the `_TASK_DONE` data (whatever
   * its status) or rejects with ConnectionError; `cancel()` cancels the task.
   */
  startTask(type, params = {}) {
    let entry;
    const done = new Promise((resolve, reject) => {
      entry = { type, resolve, reject };
    });
    done.catch(() => {}); // callers often ignore `done`; not an unhandled rejection
    if (this.session.send(`_TASK_START:${this.key}`, { type, ...params })) this._pendingTasks.push(entry);
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

  _onActionResult(data) {
    const pending = this._pendingActions.get(data?.id);
    if (!pending) return;
    this._pendingActions.delete(data.id);
    if (data.ok) pending.resolve(data.result);
    else pending.reject(new ActionError(data.error?.message ?? "action failed", data.error ?? {}));
  }

  _onTaskProgress(data) {
    for (const cb of [...(this._progress.get(data?.type) ?? [])]) this.session._call(() => cb(data.value, data));
  }

  _onTaskDone(data) {
    const i = this._pendingTasks.findIndex((t) => t.type === data?.type);
    if (i >= 0) this._pendingTasks.splice(i, 1)[0].resolve(data);
    for (const cb of [...(this._done.get(data?.type) ?? [])]) this.session._call(() => cb(data));
  }

  /**
   * An `_ERROR` about one of our events. Actions are matched by `id` (or
   * `$id`) when the server echoes it, else the oldest pending action is the
   * one rejected, as the server handles actions in order. A refused task start
   * is the most recent one: the server refuses starts as they arrive.
   */
  _onServerError(kind, err) {
    const error = () => new ActionError(err.message ?? "rejected by the server", err);
    if (kind === "_ACTION") {
      const id = err.id ?? err.$id;
      const key = this._pendingActions.has(id) ? id : this._pendingActions.keys().next().value;
      const pending = this._pendingActions.get(key);
      if (!pending) return;
      this._pendingActions.delete(key);
      pending.reject(error());
    } else if (kind === "_TASK_START") {
      this._pendingTasks.pop()?.reject(error());
    }
  }

  _onOpen() {
    if (this.session.options.getOnConnect) this.fetch();
  }

  _onClose() {
    this._synced = false;
    this._awaitingSet = false;
    const closed = () => new ConnectionError("connection closed before the answer");
    for (const { reject } of this._pendingActions.values()) reject(closed());
    this._pendingActions.clear();
    for (const { reject } of this._pendingTasks.splice(0)) reject(closed());
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
