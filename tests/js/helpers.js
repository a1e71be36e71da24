// Test doubles for the ws-sync client: a scriptable WebSocket, a manual clock
// and web storage. Not a test file itself (no .test. in the name).
import { Session } from "../../ws_sync/static/ws-sync.js";

/**
 * A WebSocket class whose instances are driven by the test: `open()`,
 * `receive(type, data, extra)`, `hello()`, `receiveBinary(bytes)`, `drop()`,
 * `fail()`; an `onSent(data)` hook sees each frame as it is sent. Each call
 * returns a new class so tests never share sockets.
 */
export function fakeWebSocketClass() {
  return class FakeWebSocket {
    static instances = [];

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closeCalls = 0;
      FakeWebSocket.instances.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error("send() on a socket that is not open");
      this.sent.push(data);
      this.onSent?.(data);
    }

    close() {
      this.closeCalls++;
      this.readyState = 3;
    }

    // --- driven by the test ---
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }

    /** A server frame; `extra` holds members beside type and data (`v`, `epoch`, `ack`). */
    receive(type, data, extra = {}) {
      this.receiveRaw(JSON.stringify({ type, data, ...extra }));
    }

    /** The protocol-2 server's answer to `_HELLO`. */
    hello() {
      this.receive("_HELLO", { protocol: 2 });
    }

    receiveRaw(text) {
      this.onmessage?.({ data: text });
    }

    receiveBinary(bytes) {
      this.onmessage?.({ data: bytes });
    }

    /** The connection is lost (server gone, network down). */
    drop() {
      this.readyState = 3;
      this.onclose?.({ code: 1006 });
    }

    /** A socket error with no close event after it. */
    fail() {
      this.onerror?.({});
    }

    /** Text frames sent so far, parsed. */
    get frames() {
      return this.sent.filter((f) => typeof f === "string").map((f) => JSON.parse(f));
    }

    /** Parsed text frames of one type. */
    framesOf(type) {
      return this.frames.filter((f) => f.type === type);
    }

    static get last() {
      return FakeWebSocket.instances.at(-1);
    }
  };
}

/**
 * A manual clock: timers run only when the test says so, earliest due first
 * (ties in the order they were set), moving `now` to their due time.
 */
export class FakeClock {
  constructor() {
    this.timers = new Map();
    this.delays = []; // every delay ever scheduled, in order
    this.now = 0;
    this._next = 1;
  }

  setTimeout = (fn, ms) => {
    const id = this._next++;
    this.timers.set(id, { fn, ms, due: this.now + (ms ?? 0) });
    this.delays.push(ms);
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  get pending() {
    return this.timers.size;
  }

  /** Run the pending timer due first. */
  runNext() {
    let first = null;
    for (const entry of this.timers) if (first === null || entry[1].due < first[1].due) first = entry;
    if (first === null) throw new Error("no pending timer");
    const [id, timer] = first;
    this.timers.delete(id);
    this.now = Math.max(this.now, timer.due);
    timer.fn();
  }

  /** Let `ms` pass, running every timer that falls due meanwhile. */
  advance(ms) {
    const until = this.now + ms;
    for (;;) {
      let first = null;
      for (const entry of this.timers) if (entry[1].due <= until && (first === null || entry[1].due < first[1].due)) first = entry;
      if (first === null) break;
      this.runNext();
    }
    this.now = until;
  }
}

/** A Web Storage stand-in (getItem/setItem). */
export class MemoryStorage {
  constructor() {
    this.map = new Map();
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.map.set(k, String(v));
  }
}

/**
 * A Session over a fake socket with a fake clock, quiet default hooks and
 * (unless `open: false`) an open connection.
 */
export function makeSession(options = {}, { open = true } = {}) {
  const WebSocket = fakeWebSocketClass();
  const clock = new FakeClock();
  const calls = { errors: [], dropped: [], toasts: [], downloads: [], disconnects: [], states: [] };
  const session = new Session("ws://test/ws", {
    WebSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0.5,
    localStorage: null,
    sessionStorage: null,
    onError: (e) => calls.errors.push(e),
    onEditsDropped: (d) => calls.dropped.push(d),
    onToast: (t) => calls.toasts.push(t),
    onDownload: (d) => calls.downloads.push(d),
    onDisconnect: (m) => calls.disconnects.push(m),
    onStateChange: (s) => calls.states.push(s),
    ...options,
  });
  session.connect();
  if (open) WebSocket.last.open();
  return { session, WebSocket, clock, calls, get ws() { return WebSocket.last; } };
}

/** Observe a promise's outcome synchronously (after `flush()`): {state, value?, error?}. */
export function track(promise) {
  const outcome = { state: "pending" };
  promise.then(
    (value) => Object.assign(outcome, { state: "fulfilled", value }),
    (error) => Object.assign(outcome, { state: "rejected", error }),
  );
  return outcome;
}

/** Let pending promise callbacks run. */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Run `fn` and collect the unhandled promise rejections it causes, waiting
 * long enough for Node to report them.
 */
export async function unhandledRejections(fn) {
  const seen = [];
  const listener = (reason) => seen.push(reason);
  process.on("unhandledRejection", listener);
  try {
    await fn();
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  } finally {
    process.off("unhandledRejection", listener);
  }
  return seen;
}
