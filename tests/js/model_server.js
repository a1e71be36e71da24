// A small model of a protocol-2 ws-sync server for one synced object, and
// clients (real Sessions over fake sockets) linked to it by lossy, ordered
// channels that the test delivers frame by frame. Not a test file itself.
//
// The server follows ws_sync/sync.py: commits apply in arrival order; a write
// made on (epoch, v) is transformed past the commits after v (containers read
// from the current document), applied all or nothing, and committed as one
// frame to every subscriber with `ack` (and `dropped`); a refused write gets
// `_ERROR` with its id, then `_SET`. `_HELLO` is answered, then the frames
// the client missed follow (or `_SET`); a later `_HELLO` is answered alone.
import { applyPatch, resolveAppends, Session, transform } from "../../ws_sync/static/ws-sync.js";
import { FakeClock, fakeWebSocketClass } from "./helpers.js";

/** Seeded PRNG (mulberry32): the same seed, the same run. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (list) => list[next.int(list.length)];
  return next;
}

/** `isList` read from a document, as tests/test_transform.py's `list_oracle`. */
export const listsOf = (doc) => (tokens) => {
  let node = doc;
  for (const token of tokens) {
    if (Array.isArray(node)) node = /^[0-9]+$/.test(token) && Number(token) < node.length ? node[Number(token)] : null;
    else if (node !== null && typeof node === "object") node = Object.hasOwn(node, token) ? node[token] : null;
    else return false;
  }
  return Array.isArray(node);
};

export class ModelServer {
  constructor(key, doc, { epoch = "e1" } = {}) {
    this.key = key;
    this.doc = doc;
    this.version = 0;
    this.epoch = epoch;
    this.history = []; // [{v, text}], the frame of every commit
    this.links = new Set();
    this.committedIds = new Set();
    this.rejected = [];
    this.onCommit = null; // (doc, frame, before) after each commit, for invariants
  }

  /** A commit of the server's own (a `sync()`): no ack. */
  change(ops) {
    this._commit(ops, {});
  }

  _commit(ops, extra) {
    const before = this.doc;
    this.doc = applyPatch(this.doc, ops);
    this.version++;
    const frame = { type: `_PATCH:${this.key}`, data: ops, v: this.version, ...extra };
    const text = JSON.stringify(frame);
    this.history.push({ v: this.version, text });
    for (const link of this.links) if (link.greeted) link.down(text);
    this.onCommit?.(this.doc, frame, before);
  }

  _set() {
    return JSON.stringify({ type: `_SET:${this.key}`, data: this.doc, v: this.version, epoch: this.epoch });
  }

  /** One frame from `link`'s client. */
  receive(link, text) {
    const msg = JSON.parse(text);
    if (msg.type === "_HELLO") return this._hello(link, msg.data);
    if (msg.type === `_GET:${this.key}`) return link.down(this._set());
    if (msg.type === `_PATCH:${this.key}`) return this._write(link, msg);
    throw new Error(`model server: unexpected frame ${text}`);
  }

  _hello(link, data) {
    link.down(JSON.stringify({ type: "_HELLO", data: { protocol: 2 } }));
    if (link.greeted) return; // after the state went out: nothing to resume
    link.greeted = true;
    const held = data.versions?.[this.key];
    if (held && held.epoch === this.epoch && held.v <= this.version) {
      for (const { v, text } of this.history) if (v > held.v) link.down(text);
    } else {
      link.down(this._set());
    }
  }

  _write(link, { data, v, epoch, $id }) {
    if (this.committedIds.has($id)) throw new Error(`write ${$id} arrived again after it was committed`);
    let ops = data;
    let dropped = [];
    if (epoch === this.epoch && Number.isInteger(v) && v < this.version) {
      const committed = this.history.filter((c) => c.v > v).flatMap((c) => JSON.parse(c.text).data);
      ({ ops, dropped } = transform(data, committed, listsOf(this.doc)));
    }
    try {
      ops = resolveAppends(this.doc, ops); // the real server commits what its lists logged: indexes
      applyPatch(this.doc, ops);
    } catch (e) {
      this.rejected.push({ $id, ops, error: e.message });
      link.down(JSON.stringify({ type: "_ERROR", data: { event: `_PATCH:${this.key}`, message: e.message, id: $id } }));
      link.down(this._set());
      return;
    }
    this.committedIds.add($id);
    this._commit(ops, dropped.length > 0 ? { ack: $id, dropped } : { ack: $id });
  }
}

/**
 * A client Session for `server`'s object, over a fake socket whose frames
 * wait in two queues (`up`, `down`) until the test delivers them.
 */
export class ModelClient {
  constructor(server, name, initialState) {
    this.server = server;
    this.name = name;
    this.dropped = [];
    this.WebSocket = fakeWebSocketClass();
    this.clock = new FakeClock();
    this.session = new Session("ws://model/ws", {
      WebSocket: this.WebSocket,
      setTimeout: this.clock.setTimeout,
      clearTimeout: this.clock.clearTimeout,
      random: () => 0.5,
      localStorage: null,
      sessionStorage: null,
      onEditsDropped: (d) => this.dropped.push(d),
      onError: () => {},
      onStateChange: () => {},
    });
    this.store = this.session.store(server.key, initialState);
    this.link = null;
  }

  get online() {
    return this.link !== null;
  }

  /** Open a connection (the first, or the next after `drop`). */
  connect() {
    if (this.link) return;
    if (this.WebSocket.instances.length === 0) this.session.connect();
    else this.clock.runNext(); // the scheduled reconnect
    const ws = this.WebSocket.last;
    const link = { up: [], downQueue: [], greeted: false, ws };
    link.down = (text) => link.downQueue.push(text);
    ws.onSent = (text) => link.up.push(text);
    this.link = link;
    this.server.links.add(link);
    ws.open();
  }

  /** The connection is lost, with whatever frames were on their way. */
  drop() {
    if (!this.link) return;
    this.server.links.delete(this.link);
    const { ws } = this.link;
    this.link = null;
    ws.drop();
  }

  /** Queues with a frame to deliver: [client, "up" | "down"]. */
  ready() {
    if (!this.link) return [];
    const out = [];
    if (this.link.up.length > 0) out.push("up");
    if (this.link.downQueue.length > 0) out.push("down");
    return out;
  }

  deliver(direction) {
    const link = this.link;
    if (direction === "up") this.server.receive(link, link.up.shift());
    else link.ws.receiveRaw(link.downQueue.shift());
  }
}

/** Deliver every frame on its way, in a random order that keeps each channel's order. */
export function settle(clients, random) {
  for (let steps = 0; ; steps++) {
    const ready = clients.flatMap((c) => c.ready().map((d) => [c, d]));
    if (ready.length === 0) return;
    if (steps > 100_000) throw new Error("no quiescence");
    const [client, direction] = random.pick(ready);
    client.deliver(direction);
  }
}
