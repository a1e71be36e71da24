/**
 * Type declarations for ws-sync.js, the ws-sync browser client.
 * Wire protocol: docs/protocol.md. Every outbound text frame is `{"type", "data"}` JSON,
 * except local writes under versioned sync, which add `"v"`, `"epoch"` and `"$id"`.
 *
 * Versioned sync (protocol 2, the default): the socket URL gets `ws_sync=2`
 * and the first frame is `_HELLO` with the confirmed `{epoch, v}` of every
 * store. Server `_SET`/`_PATCH` frames carry the object's version `v`; a
 * store keeps the confirmed state and version across reconnects and resumes
 * from them. It has at most one write in flight; the write and the edits made
 * after it are transformed past every server commit (see `transform`), stay
 * pending until the server acknowledges the write (`ack`) or refuses it
 * (`_ERROR` with its `$id`), and then the next edits go as one write. A server
 * that does not answer `_HELLO` with protocol 2 is spoken to in protocol 1.
 *
 * Every `action()` promise and task `done` promise settles exactly once: on
 * its answer (`_ACTION_RESULT`, `_TASK_DONE`, or an `_ERROR` carrying its id),
 * with an ActionTimeoutError after `actionTimeout`, or with ConnectionError
 * when it can no longer be answered (`_DISCONNECT`, `close()`, a lost
 * connection to a protocol-1 server or with `offlineActions: "fail"`).
 * Calls made while offline wait for the reconnect; calls unanswered when a
 * protocol-2 connection dropped go again with the same `$id` after the resume
 * (the server runs each id at most once). Ids are a random per-page prefix
 * and a counter. Answers for an id already settled are ignored.
 */

/** A JSON value as it travels on the wire. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

/** A JSON Pointer string (`"/notes/0/title"`, `""` for the root) or its unescaped segments (`["notes", 0, "title"]`). */
export type Pointer = string | Array<string | number>;

/** One RFC 6902 operation. */
export type PatchOperation =
  | { op: "add" | "replace" | "test"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "move" | "copy"; from: string; path: string };

// ---------------------------------------------------------------------------
// JSON Patch / Pointer
// ---------------------------------------------------------------------------

/** An invalid patch or pointer, or one that does not apply. */
export class PatchError extends Error {
  name: "PatchError";
  /** The operation that failed, if any. */
  op?: PatchOperation;
}

/**
 * Apply an RFC 6902 patch immutably: `doc` is never changed; only containers
 * along modified paths are copied (untouched subtrees keep their identity).
 * All or nothing: throws PatchError on any failure. Object keys `__proto__`,
 * `constructor` and `prototype` are refused in paths.
 */
export function applyPatch<T>(doc: T, ops: PatchOperation[]): T;

/** A small RFC 6902 patch turning `before` into `after` (appends use index "-"). */
export function diff(before: unknown, after: unknown): PatchOperation[];
/** `ops` with each `"-"` list index replaced by the index it stands for on `doc`, op after op. */
export function resolveAppends(doc: unknown, ops: PatchOperation[]): PatchOperation[];

/** Unescaped segments of a pointer (`~1` → `/`, `~0` → `~`). */
export function parsePointer(pointer: Pointer): string[];
/** A pointer from raw segments, escaping `~` and `/`. */
export function formatPointer(segments: Array<string | number>): string;
/** The value at `pointer`; throws PatchError if absent. */
export function getAt(doc: unknown, pointer: Pointer): unknown;
/** Whether `pointer` names an existing value. */
export function hasAt(doc: unknown, pointer: Pointer): boolean;
/** JSON equality (key order ignored; `undefined` members count as absent). */
export function deepEqual(a: unknown, b: unknown): boolean;

// ---------------------------------------------------------------------------
// Transform of concurrent ops (the server's ws_sync/transform.py)
// ---------------------------------------------------------------------------

/** Whether the container at these (unescaped) tokens is an array, in the document the ops were made on. */
export type IsList = (tokens: string[]) => boolean;

export interface Transformed {
  /** The ops that are kept, rewritten to apply after the committed ones. */
  ops: PatchOperation[];
  /** Indexes (in the ops given) of the ops dropped: their target, or an ancestor of it, was removed or replaced. */
  dropped: number[];
  /**
   * The committed ops that change the document's shape (a copy as an add
   * without value, a test left out), each carried past every op of `ops`
   * where it stood when that op applied (also past a dropped one): ops made
   * after `ops` are transformed past them in turn.
   */
  committed: Array<PatchOperation | { op: "add"; path: string }>;
}

/**
 * `ops` rewritten to apply after `committed`, by the rules of
 * ws_sync/transform.py and its table of cases (tests/transform_cases.json):
 * list indexes shift across adds, removes and moves of the same list (of two
 * inserts at one index the committed one comes first), an op whose target or
 * an ancestor of it went is dropped, an op inside a moved value follows it,
 * and of two writes of one path the later (`ops`) is kept.
 */
export function transform(ops: PatchOperation[], committed: PatchOperation[], isList: IsList): Transformed;

/**
 * `op` after `first` was applied before it; null if `first` removed or
 * replaced what `op` needs. `later` (default true): `op` is the later of the
 * two, so it loses a tie between two inserts at one index and wins between
 * two moves of one value.
 */
export function past(op: PatchOperation, first: PatchOperation, isList: IsList, later?: boolean): PatchOperation | null;

// ---------------------------------------------------------------------------
// Helpers and errors
// ---------------------------------------------------------------------------

/** An action or task start the server refused (`ok: false` result, or an `_ERROR` with its id). */
export class ActionError extends Error {
  /** "TimeoutError" for an ActionTimeoutError. */
  name: "ActionError" | "TimeoutError";
  /** The `error` object of `_ACTION_RESULT`, or the whole `_ERROR` data (see ServerError; `ref` names a hidden internal error in the server log). */
  details: Record<string, unknown>;
}

/** No answer within `actionTimeout` (the action may still run). An ActionError, named "TimeoutError"; `details` is `{id, timeout}`. */
export class ActionTimeoutError extends ActionError {
  name: "TimeoutError";
}

/** Not connected when calling (and not queued), or the call can no longer be answered (`_DISCONNECT`, `close()`, a lost protocol-1 connection). */
export class ConnectionError extends Error {
  name: "ConnectionError";
}

/** camelCase JS name → SCREAMING_SNAKE action type: `addNote` → `ADD_NOTE`, `loadURL` → `LOAD_URL`. */
export function toActionType(name: string): string;

/** Decode base64 (the `data` of `_DOWNLOAD`) to bytes. */
export function decodeBase64(b64: string): Uint8Array;

// ---------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------

/**
 * - "connecting": the first connection is being opened;
 * - "open": connected;
 * - "reconnecting": the connection was lost (or found dead by a ping); a
 *   retry is scheduled or under way, calls and edits wait for it;
 * - "offline": the browser reported offline; no retries until "online" or `retryNow()`;
 * - "closed": `close()` was called, or the connection was lost with `reconnect: false`;
 * - "disconnected": the server sent `_DISCONNECT` (another tab took the
 *   session over); `disconnectMessage` says why; no retries until `connect()` or `retryNow()`.
 */
export interface TaskState<V = unknown> {
  readonly running: boolean;
  /** The last `_TASK_PROGRESS` value; undefined before any. */
  readonly progress: V | undefined;
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "offline" | "closed" | "disconnected";

export type ToastType = "default" | "message" | "info" | "success" | "warning" | "error";

export interface Toast {
  type: ToastType;
  message: string;
}

export interface Download {
  filename: string;
  /** File contents, base64 (see decodeBase64). */
  data: string;
}

/** `_ERROR` data, or a local connection error (`event: "connect"`). */
export interface ServerError {
  /** The offending client event type, e.g. `"_ACTION:NOTES"`. */
  event?: string;
  message: string;
  errors?: unknown[];
  /** The `$id` of the frame that caused it, when the server could read one. */
  id?: unknown;
  /** For an internal error whose text the server hides: a short reference to its server-log entry. */
  ref?: string;
  [key: string]: unknown;
}

export interface DroppedEdit {
  key: string;
  ops: PatchOperation[];
  /**
   * "offline": made while offline with `offlineEdits: "drop"`; "conflict": no
   * longer applies to the server's new state (protocol 2: the transform past a
   * server commit dropped it, here or on the server, which names it in its
   * ack's `dropped`); "rejected" (protocol 2): the server refused the write
   * (`error` is its `_ERROR` data, also passed to onError).
   */
  reason: "offline" | "conflict" | "rejected";
  error?: PatchError | ServerError;
}

/** A server frame as received, for the fields beside `data` (`v`, `epoch`, `ack`, `dropped` under protocol 2). */
export interface Frame {
  type: string;
  data?: unknown;
  v?: number;
  epoch?: string;
  /** On the commit of a client's write (every subscriber gets it): that write's `$id`. */
  ack?: string;
  /** With `ack`: indexes, in the write as sent, of the ops the server's transform dropped. */
  dropped?: number[];
  [key: string]: unknown;
}

/** Minimal WebSocket shape the session needs (so tests can inject a fake). */
export interface WebSocketLike {
  readyState: number;
  binaryType: string;
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void;
  close(): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface SessionOptions {
  /** WebSocket constructor; default `globalThis.WebSocket`. */
  WebSocket?: new (url: string) => WebSocketLike;
  /** Where `online`/`offline` events come from; default `globalThis.window` (none outside browsers); null to ignore them. */
  window?: EventTarget | null;
  /** Timer and randomness, injectable for tests. Defaults: global setTimeout/clearTimeout, Math.random. */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
  random?: () => number;

  /** Reconnect after a lost connection (not after close() or `_DISCONNECT`). Default true. */
  reconnect?: boolean;
  /** Backoff: retry n waits `min(maxDelay, initialDelay * factor**n) * (1 - jitter * random())` ms. Defaults 500, 30000, 2, 0.5. */
  initialDelay?: number;
  maxDelay?: number;
  factor?: number;
  jitter?: number;

  /**
   * Local edits made while offline: "queue" (default) applies them at once and
   * sends them once the server state is known again (protocol 2: once the
   * resume after the `_HELLO` answer is in; protocol 1: replayed after the
   * next `_SET` of their key);
   * "drop" rejects them via onEditsDropped. Overridable per store.
   */
  offlineEdits?: "queue" | "drop";
  /**
   * `action()` and `startTask()` while not connected: "queue" (default) sends
   * them after the reconnect and its resume (after the edits made before
   * them); "fail" rejects them at once with ConnectionError.
   */
  offlineActions?: "queue" | "fail";
  /** Reject an unanswered `action()` with ActionTimeoutError this many ms after the call (queued time included). Default 30000; null: never. */
  actionTimeout?: number | null;
  /**
   * Liveness (protocol 2 only): after `pingInterval` ms without a frame from
   * the server (default 10000; null: never) send `_PING`; with no frame
   * within `pingTimeout` ms after it (default 10000; null: wait forever) the
   * connection counts as dead and is replaced.
   */
  pingInterval?: number | null;
  pingTimeout?: number | null;
  /**
   * Send `_GET:<key>` for every store whenever a connection opens. Off by
   * default: the server pushes `_SET` on connect (send-on-init). Stores
   * created while already connected always send `_GET`.
   */
  getOnConnect?: boolean;
  /**
   * At most this many `action()` calls are sent and unanswered at once
   * (default 32; at least 1, `Infinity` for no bound). Later calls wait in
   * call order and are sent as answers arrive. The server stops reading a
   * client that floods it, which would hold up its patches too.
   */
  maxInFlight?: number;
  /**
   * 2 (default): offer versioned sync (`ws_sync=2` on the URL, `_HELLO`
   * first), falling back to protocol 1 per connection when the server does
   * not take it. 1: the URL as given, no `_HELLO`, versions ignored.
   */
  protocol?: 1 | 2;

  /** Ids for the `_USER_SESSION` handshake; generated and stored when absent. */
  userId?: string;
  sessionId?: string;
  /** Where generated ids are kept; default globalThis.localStorage / sessionStorage; null = keep in memory only. */
  localStorage?: StorageLike | null;
  sessionStorage?: StorageLike | null;
  /** Storage key prefix: `<storageKey>:user`, `<storageKey>:session`. Default "ws-sync". */
  storageKey?: string;

  onStateChange?: (state: ConnectionState) => void;
  /**
   * Every `_ERROR` from the server (default: console.warn). One carrying an
   * `id` also rejects the action or task start sent with that `$id`. One
   * without is guessed only for servers that never echo ids: it rejects the
   * oldest sent action of its `_ACTION:<key>` event until an `_ERROR` with an
   * id arrives on the connection, or the latest start of its
   * `_TASK_START:<key>` event until a `_TASK_START` `_ERROR` with an id does.
   */
  onError?: (error: ServerError) => void;
  /** `_DISCONNECT` message (default: console.warn). The session then stays "disconnected". */
  onDisconnect?: (message: string) => void;
  /** `_TOAST` (default: console by severity). */
  onToast?: (toast: Toast) => void;
  /** `_DOWNLOAD` (default: save via a temporary link when `document` exists, else nothing). */
  onDownload?: (file: Download) => void;
  /** A local edit dropped: could not be sent, no longer applies, or refused by the server (default: console.warn). */
  onEditsDropped?: (dropped: DroppedEdit) => void;
}

export interface StoreOptions {
  offlineEdits?: "queue" | "drop";
}

/** Inbound binary event payload: the `_BIN_META` metadata plus the bytes. */
export type BinaryEvent<M = Record<string, unknown>> = M & { data: ArrayBuffer };

export class Session {
  constructor(url: string, options?: SessionOptions);
  readonly url: string;
  readonly options: Required<Omit<SessionOptions, "WebSocket" | "setTimeout" | "clearTimeout" | "random">> & SessionOptions;
  readonly state: ConnectionState;
  readonly isOpen: boolean;
  /** The protocol agreed on the current connection: 2 (versioned) or 1; null when not open or not agreed yet. */
  readonly protocol: 1 | 2 | null;
  /** Unanswered `action()` calls: sent (at most `maxInFlight`) plus waiting to be sent. */
  readonly pendingActions: number;

  /** The server's `_DISCONNECT` message while the state is "disconnected" (the tab was taken over); else null. */
  readonly disconnectMessage: string | null;

  /** Open the connection (idempotent). */
  connect(): this;
  /** Reconnect now, skipping the backoff wait (also from "offline" or "disconnected"). A no-op while connected or connecting. */
  retryNow(): this;
  /** Close and stop reconnecting; unanswered actions (sent or waiting) and task `done` promises reject with ConnectionError. */
  close(): void;

  /**
   * Listen to any event type (`"_TOAST"`, `"_SET:NOTES"`, a binary event named
   * in `_BIN_META`…). The handler gets the data and the whole frame (absent
   * for binary events). Returns an unsubscribe function.
   */
  on(type: string, handler: (data: any, frame?: Frame) => void): () => void;
  off(type: string, handler: (data: any, frame?: Frame) => void): void;
  /** Listen to connection state changes. Returns an unsubscribe function. */
  subscribeState(listener: (state: ConnectionState) => void): () => void;

  /** Send `{type, data}`; false (nothing sent) when not connected. */
  send(type: string, data?: unknown): boolean;
  /** Send `_BIN_META {type, metadata}` then `bytes` as one binary frame; false when not connected. */
  sendBinary(type: string, metadata: Record<string, unknown>, bytes: ArrayBufferLike | ArrayBufferView | Blob): boolean;

  /**
   * The store for `key`, created on first call; later calls return it and
   * ignore the other arguments. With the types `ws-sync typescript` generates,
   * `store<Notes, NotesActions, NotesTasks>(NotesKey)` checks action and task
   * names, params and results.
   */
  store<S = any, A extends ActionSpecs = AnyActions, T extends ActionSpecs = AnyActions>(
    key: string,
    initialState?: S,
    options?: StoreOptions,
  ): SyncedStore<S, A, T>;

  /** The ids sent in `_USER_SESSION`. */
  userSession(): { user: string; session: string };
}

// ---------------------------------------------------------------------------
// SyncedStore
// ---------------------------------------------------------------------------

/** One action's or task's params and result (as `ws-sync typescript` generates them). */
export interface ActionSpec {
  params: object;
  result: unknown;
}
/** Action (or task) key → its ActionSpec. */
export type ActionSpecs = { [type: string]: ActionSpec };
/** Any key, any params: the actions of an untyped store. */
export type AnyActions = { [type: string]: { params: Record<string, unknown>; result: any } };
/** The params argument: optional when the action needs none. */
export type ParamsArg<P> = {} extends P ? [params?: P] : [params: P];
/** What a task's `_TASK_PROGRESS` carries, as its spec declares (else unknown). */
export type ProgressOf<Spec> = Spec extends { progress: infer P } ? P : unknown;
/** `R` when given explicitly, else the result the spec declares. */
export type ResultOf<R, Spec extends ActionSpec> = [R] extends [never] ? Spec["result"] : R;

export interface TaskDone<R = unknown> {
  type: string;
  status: "completed" | "cancelled" | "failed";
  result?: R;
  error?: string;
}

export interface TaskHandle<R = unknown> {
  /**
   * Resolves with the `_TASK_DONE` data (any status); rejects with ActionError
   * (start refused) or ConnectionError. Already handled: ignoring it causes
   * no unhandled rejection.
   */
  done: Promise<TaskDone<R>>;
  /** Send `_TASK_CANCEL`. */
  cancel(): boolean;
}

/**
 * The local copy of one synced object: the state the server confirmed, with
 * the local edits it has not confirmed yet applied on top, in order.
 * Local edits are optimistic. An edit that no longer applies after a server
 * change is dropped (onEditsDropped, "conflict").
 *
 * Protocol 2: at most one write is in flight per store. The edits made
 * while it is out wait, and go as one write when it is acknowledged (a
 * `_PATCH` with its `ack`), on the version that ack brought. A write carries
 * the confirmed version and epoch it applies to and a `$id`; an `_ERROR`
 * with its `$id` rolls it back ("rejected"). Every server commit moves the
 * write in flight and the waiting edits past it, as the server transforms
 * the write, so an edit stays on the item it was made on; what a commit
 * removed is dropped ("conflict"). A `_SET` keeps them and re-applies them
 * by position. State and version survive a disconnect; the server sends only
 * what was missed. After a reconnect, writes wait until the resume is in (a
 * second `_HELLO` is answered after the resume frames): a write whose ack is
 * among them is done, one that is not is sent again with its `$id`.
 *
 * Protocol 1: edits made offline or before the connection's first `_SET` are
 * replayed on that `_SET`; an edit counts as confirmed once sent.
 *
 * Keys named `__proto__`, `constructor` or `prototype` cannot be patched.
 */
export class SyncedStore<S = any, A extends ActionSpecs = AnyActions, T extends ActionSpecs = AnyActions> {
  readonly session: Session;
  readonly key: string;
  /** The state came from the server on the current connection: a `_SET`, or (protocol 2) a resume from `version`. */
  readonly synced: boolean;
  /** Local edits not sent yet (made offline, before the state was known, waiting behind the write in flight, or lost with a connection before their ack). */
  readonly pendingEdits: number;
  /** Local edits the server has not confirmed yet: not sent, or (protocol 2) awaiting their ack. */
  readonly pending: number;
  /** Server version of `confirmedState`; null when the server does not version this object. */
  readonly version: number | null;
  /** Epoch of `version` (a new epoch restarts the numbering); null when unversioned. */
  readonly epoch: string | null;
  /** The last state the server confirmed, without pending local edits (`getState()` includes them). */
  readonly confirmedState: S;

  /** Current state: the confirmed state with pending local edits applied (bound; fine for useSyncExternalStore). */
  getState: () => S;
  /** Called after each state change (bound). Returns an unsubscribe function. */
  subscribe: (listener: () => void) => () => void;

  /** Send `_GET`; incoming patches are ignored until the `_SET` answer. */
  fetch(): void;

  /** Set a value: `replace` if the path exists, else `add` (`/list/-` appends). False if dropped (offline, "drop"). Throws PatchError if the parent is missing. */
  set(path: Pointer, value: unknown): boolean;
  /** Replace the state with `fn(state)` (must return a new object, not mutate); the difference is sent as `_PATCH`. */
  update(fn: (state: S) => S): boolean;
  /** Apply and send raw RFC 6902 operations. */
  patch(ops: PatchOperation[]): boolean;

  /**
   * `_ACTION` with `$id`; resolves with `_ACTION_RESULT.result`. Rejects with
   * ActionError (`ok: false`, or an `_ERROR` with its id) or ConnectionError
   * (not connected, or the connection ended first). Beyond `maxInFlight`
   * unanswered actions the call waits its turn before it is sent.
   */
  action<R = never, K extends keyof A & string = keyof A & string>(
    type: K,
    ...params: ParamsArg<A[K]["params"]>
  ): Promise<ResultOf<NoInfer<R>, A[K]>>;
  /** `_ACTION` without `$id` (servers without the extension). False when not connected. */
  sendAction<K extends keyof A & string>(type: K, ...params: ParamsArg<A[K]["params"]>): boolean;
  /** `_BIN_META {type: "_ACTION:<key>", metadata: {type, ...params}}` + bytes. */
  sendBinaryAction(type: keyof A & string, params: Record<string, unknown>, bytes: ArrayBufferLike | ArrayBufferView | Blob): boolean;

  /**
   * `_TASK_START` with a `$id`; an `_ERROR` with that id rejects `done` (see
   * SessionOptions.onError for servers without ids). Queued while offline as
   * actions are; sent again with its id after a protocol-2 resume.
   */
  startTask<R = never, K extends keyof T & string = keyof T & string>(
    type: K,
    ...params: ParamsArg<T[K]["params"]>
  ): TaskHandle<ResultOf<NoInfer<R>, T[K]>>;
  /** `_TASK_CANCEL`. False when not connected. */
  cancelTask(type: keyof T & string): boolean;
  onTaskProgress<K extends keyof T & string>(
    type: K,
    cb: (value: ProgressOf<T[K]>, data: { type: K; value: ProgressOf<T[K]> }) => void,
  ): () => void;
  onTaskDone<K extends keyof T & string>(type: K, cb: (data: TaskDone<T[K]["result"]>) => void): () => void;
  /**
   * What this client last heard of task `type`: running from its start (or
   * any `_TASK_PROGRESS`, such as the one a resumed connection gets right
   * after the state) until `_TASK_DONE` or a refusal; kept across a
   * protocol-2 reconnect (no idle flash). A new object on each change.
   */
  task<V = unknown>(type: string): TaskState<V>;
  /** Called with the type and its new TaskState on each change. Returns an unsubscribe function. */
  subscribeTasks(listener: (type: string, task: TaskState) => void): () => void;

  /** Handle the server's `_ACTION` of `type`; `params` is its data without `type`. One handler per type. */
  onAction(type: string, handler: (params: Record<string, unknown>) => void): () => void;
}
