// Clients of the randomized convergence test (tests/test_jepsen.py): N
// sessions of the bundled ws-sync client in one node process, each through
// its own fault-injecting proxy, driven by a seeded random workload.
//
//   node tests/js/jepsen_client.mjs --seed 7 --server 8000 --ports 9001,9002 --ops 60
//
// Talks to the test on stdio, one JSON object a line. It prints
// {"event":"ready"} once every client holds the state, runs the workload on
// "start", prints {"event":"workload-done"}, and on "settle" brings every
// client back online, waits until none has anything pending and all are at
// the server's version, and prints {"event":"report", ...}: what each client
// shows and everything it sent and heard back.
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { Session } from "../../ws_sync/static/ws-sync.js";
import { prng as rng } from "./model_server.js"; // seeded: a seed's workload is the same on every run

const KEY = "SHARED";

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return {
    seed: Number(out.seed ?? 1),
    server: Number(out.server),
    ports: String(out.ports).split(",").map(Number),
    ops: Number(out.ops ?? 60),
    settleMs: Number(out["settle-ms"] ?? 30_000),
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const print = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

/** One client: a session behind its proxy, and the record of what it sent and heard. */
class Client {
  constructor(n, port, seed) {
    this.n = n;
    this.rng = rng(seed * 1000 + n + 1);
    this.window = new EventTarget();
    this.offline = false;
    this.writes = {}; // $id -> {ops, v} as last sent
    this.acks = {}; // $id -> {v, dropped}
    this.errors = [];
    this.drops = [];
    this.actions = {}; // token -> "pending" | {ok, result} | {error}
    this.count = 0;
    const writes = this.writes;
    class RecordingSocket extends WebSocket {
      send(data) {
        if (typeof data === "string") {
          const frame = JSON.parse(data);
          if (frame.type === `_PATCH:${KEY}` && frame.$id !== undefined) writes[frame.$id] = { ops: frame.data, v: frame.v };
        }
        super.send(data);
      }
    }
    this.session = new Session(`ws://127.0.0.1:${port}/ws`, {
      WebSocket: RecordingSocket,
      window: this.window,
      // the last two clients are two tabs of one user session (with user sessions on)
      userId: `user-${Math.min(n, 2)}`,
      sessionId: `session-${seed}-${Math.min(n, 2)}`,
      initialDelay: 20,
      maxDelay: 300,
      pingInterval: 200,
      pingTimeout: 400,
      actionTimeout: 120_000,
      random: this.rng,
      onError: (err) => this.errors.push(err),
      onEditsDropped: ({ ops, reason }) => this.drops.push({ ops, reason }),
      onToast: () => {},
    });
    this.store = this.session.store(KEY, {});
    this.session.on(`_PATCH:${KEY}`, (_data, frame) => {
      if (frame?.ack !== undefined && frame.ack in this.writes) this.acks[frame.ack] = { v: frame.v, dropped: frame.dropped ?? [] };
    });
    this.session.connect();
  }

  get state() {
    return this.store.getState();
  }

  token() {
    return `c${this.n}-${++this.count}`;
  }

  /** The browser goes offline for `ms`, as its `offline`/`online` events say. */
  goOffline(ms) {
    if (this.offline) return;
    this.offline = true;
    this.window.dispatchEvent(new Event("offline"));
    setTimeout(() => this.goOnline(), ms);
  }

  goOnline() {
    if (!this.offline) return;
    this.offline = false;
    this.window.dispatchEvent(new Event("online"));
  }

  /** One random step of the workload. */
  step() {
    const r = this.rng;
    const cards = this.state.cards ?? [];
    const n = cards.length;
    const kind = r.pick(["title", "title", "text", "text", "text", "typing", "insert", "append", "remove", "move", "move", "votes", "tag", "untag", "bump", "bump", "offline"]);
    const t = this.token();
    const card = () => ({ id: t, text: `${t}@${t}`, votes: 0 });
    switch (kind) {
      case "title":
        return this.store.set("/title", t);
      case "text":
        // the text names its card: an edit that lands on another card shows
        if (n) {
          const i = r.int(n);
          return this.store.set(["cards", i, "text"], `${t}@${cards[i].id}`);
        }
        break;
      case "typing": {
        // several keystrokes into one card, faster than the acks come back
        if (!n) break;
        const i = r.int(n);
        const id = cards[i].id;
        for (let k = 1; k <= 4; k++) this.store.set(["cards", i, "text"], `${t}.${k}@${id}`);
        return;
      }
      case "insert":
        return this.store.patch([{ op: "add", path: `/cards/${r.int(n + 1)}`, value: card() }]);
      case "append":
        return this.store.patch([{ op: "add", path: "/cards/-", value: card() }]);
      case "remove":
        if (n) return this.store.patch([{ op: "remove", path: `/cards/${r.int(n)}` }]);
        break;
      case "move":
        if (n > 1) return this.store.patch([{ op: "move", from: `/cards/${r.int(n)}`, path: `/cards/${r.int(n)}` }]);
        break;
      case "votes":
        if (n) {
          const i = r.int(n);
          return this.store.set(["cards", i, "votes"], cards[i].votes + 1);
        }
        break;
      case "tag":
        return this.store.set(["tags", `k${r.int(6)}`], this.count);
      case "untag": {
        const keys = Object.keys(this.state.tags ?? {});
        if (keys.length) return this.store.patch([{ op: "remove", path: `/tags/${r.pick(keys)}` }]);
        break;
      }
      case "bump": {
        this.actions[t] = "pending";
        this.store.action("BUMP", { token: t, tag: `b${r.int(3)}` }).then(
          (result) => (this.actions[t] = { ok: true, result }),
          (e) => (this.actions[t] = { error: `${e?.name}: ${e?.message}` }),
        );
        return;
      }
      case "offline":
        return this.goOffline(50 + r.int(500));
    }
    return this.store.set("/title", t);
  }

  async workload(ops) {
    for (let i = 0; i < ops; i++) {
      await sleep(this.rng.int(30));
      this.step();
    }
  }

  /** Nothing in flight or waiting, connected, at version `v`. */
  settledAt(v) {
    const s = this.session;
    const st = this.store;
    return (
      s.state === "open" &&
      s.protocol === 2 &&
      !s._barrier &&
      st.synced &&
      st.pending === 0 &&
      st.pendingEdits === 0 &&
      st._inflight === null &&
      s.pendingActions === 0 &&
      Object.values(this.actions).every((a) => a !== "pending") &&
      st.version === v
    );
  }

  summary() {
    const s = this.session;
    const st = this.store;
    return {
      n: this.n,
      state: this.shown,
      fetched: this.fetched,
      confirmed: st.confirmedState,
      version: st.version,
      epoch: st.epoch,
      connection: s.state,
      protocol: s.protocol,
      pending: st.pending,
      pendingEdits: st.pendingEdits,
      inflight: st._inflight && { id: st._inflight.id, ops: st._inflight.ops, ackV: st._inflight.ackV ?? null },
      pendingActions: s.pendingActions,
      writes: this.writes,
      acks: this.acks,
      errors: this.errors,
      drops: this.drops,
      actions: this.actions,
    };
  }
}

async function serverVersion(port) {
  const res = await fetch(`http://127.0.0.1:${port}/version`);
  return (await res.json()).v;
}

/** A client that connects straight to the server at the end and reads the state, as `_SET` gives it. */
async function observe(port) {
  const session = new Session(`ws://127.0.0.1:${port}/ws`, { WebSocket, window: null, onToast: () => {} });
  const store = session.store(KEY, {});
  session.connect();
  for (let i = 0; i < 200 && !store.synced; i++) await sleep(25);
  const out = { state: store.getState(), version: store.version, synced: store.synced };
  session.close();
  return out;
}

async function main() {
  const opts = args();
  const clients = opts.ports.map((port, n) => new Client(n, port, opts.seed));
  const lines = createInterface({ input: process.stdin });
  const commands = lines[Symbol.asyncIterator]();
  const command = async (want) => {
    const { value, done } = await commands.next();
    if (done || value.trim() !== want) throw new Error(`expected "${want}" on stdin, got ${done ? "end of input" : JSON.stringify(value)}`);
  };

  for (let i = 0; i < 400 && !clients.every((c) => c.store.synced); i++) await sleep(25);
  print({ event: "ready", synced: clients.map((c) => c.store.synced) });
  await command("start");
  await Promise.all(clients.map((c) => c.workload(opts.ops)));
  print({ event: "workload-done" });

  await command("settle");
  for (const c of clients) {
    c.goOnline();
    c.session.retryNow();
  }
  const deadline = Date.now() + opts.settleMs;
  let settled = false;
  let v = null;
  while (Date.now() < deadline) {
    v = await serverVersion(opts.server);
    if (clients.every((c) => c.settledAt(v))) {
      await sleep(150); // nothing may move after that
      if ((await serverVersion(opts.server)) === v && clients.every((c) => c.settledAt(v))) {
        settled = true;
        break;
      }
    }
    for (const c of clients) if (c.session.state !== "open") c.session.retryNow();
    await sleep(50);
  }
  // Each client asks for the whole state (_GET) and keeps what it showed before.
  const shown = clients.map((c) => c.state);
  for (const c of clients) c.store.fetch();
  for (let i = 0; i < 200 && clients.some((c) => c.store._awaitingSet); i++) await sleep(10);
  for (const c of clients) c.fetched = c.store._awaitingSet ? null : c.store.confirmedState;
  for (const [i, c] of clients.entries()) c.shown = shown[i];
  const observer = await observe(opts.server);
  print({ event: "report", settled, serverVersion: v, observer, clients: clients.map((c) => c.summary()) });
  for (const c of clients) c.session.close();
  // promises still pending after close() rejected with ConnectionError; give them a tick
  await sleep(10);
  process.exit(0);
}

main().catch((e) => {
  print({ event: "crash", error: String(e?.stack ?? e) });
  process.exit(1);
});
