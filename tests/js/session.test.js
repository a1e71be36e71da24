// Session: connection lifecycle, reconnect backoff, built-in events, binary frames, handshake.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Session } from "../../ws_sync/static/ws-sync.js";
import { FakeClock, fakeWebSocketClass, makeSession, MemoryStorage } from "./helpers.js";

describe("connection lifecycle", () => {
  it("connects to the url and reports connecting then open", () => {
    const t = makeSession({}, { open: false });
    assert.equal(t.ws.url, "ws://test/ws?ws_sync=2", "the app's URL, offering protocol 2");
    assert.equal(t.ws.binaryType, "arraybuffer");
    assert.equal(t.session.state, "connecting");
    assert.equal(t.session.isOpen, false);
    t.ws.open();
    assert.equal(t.session.state, "open");
    assert.equal(t.session.isOpen, true);
    assert.deepEqual(t.calls.states, ["connecting", "open"]);
  });

  it("connect() is idempotent", () => {
    const t = makeSession();
    t.session.connect();
    t.session.connect();
    assert.equal(t.WebSocket.instances.length, 1);
  });

  it("subscribeState listeners see changes until unsubscribed", () => {
    const t = makeSession();
    const seen = [];
    const unsubscribe = t.session.subscribeState((s) => seen.push(s));
    t.ws.drop();
    t.clock.runNext();
    unsubscribe();
    t.ws.open();
    assert.deepEqual(seen, ["reconnecting"], "the retry is still reconnecting");
  });

  it("send() writes {type, data} JSON and refuses when not open", () => {
    const t = makeSession();
    assert.equal(t.session.send("X", { a: [1] }), true);
    assert.equal(t.ws.sent.at(-1), JSON.stringify({ type: "X", data: { a: [1] } }));
    t.ws.drop();
    assert.equal(t.session.send("X", 1), false);
  });

  it("close() stops reconnecting and closes the socket", () => {
    const t = makeSession();
    const ws = t.ws;
    t.session.close();
    assert.equal(ws.closeCalls, 1);
    assert.equal(t.session.state, "closed");
    assert.equal(t.clock.pending, 0);
    ws.onclose?.({}); // the late close event of the old socket changes nothing
    assert.equal(t.clock.pending, 0);
    assert.equal(t.WebSocket.instances.length, 1);
  });

  it("close() cancels a scheduled reconnect", () => {
    const t = makeSession();
    t.ws.drop();
    assert.equal(t.clock.pending, 1);
    t.session.close();
    assert.equal(t.clock.pending, 0);
  });

  it("reconnect: false disables reconnecting", () => {
    const t = makeSession({ reconnect: false });
    t.ws.drop();
    assert.equal(t.clock.pending, 0);
    assert.equal(t.session.state, "closed");
  });
});

describe("reconnect backoff", () => {
  it("grows exponentially, is capped, and resets after a successful open", () => {
    const t = makeSession({ initialDelay: 100, factor: 2, maxDelay: 1000, jitter: 0.5, random: () => 0 });
    for (let i = 0; i < 6; i++) {
      t.ws.drop();
      assert.equal(t.session.state, "reconnecting");
      t.clock.runNext();
      assert.equal(t.session.state, "reconnecting");
    }
    // random() = 0: no jitter taken off; base = min(1000, 100 * 2^n)
    assert.deepEqual(t.clock.delays, [100, 200, 400, 800, 1000, 1000]);
    assert.equal(t.WebSocket.instances.length, 7);
    t.ws.open();
    t.ws.drop();
    assert.equal(t.clock.delays.at(-1), 100, "attempts reset once a connection opened");
  });

  it("jitter takes a random share of up to `jitter` off each delay", () => {
    const randoms = [0.9, 0.1, 0.5, 1, 0];
    const t = makeSession({ initialDelay: 1000, factor: 3, maxDelay: 60000, jitter: 0.5, random: () => randoms.shift() });
    for (let i = 0; i < 5; i++) {
      t.ws.drop();
      t.clock.runNext();
    }
    const bases = [1000, 3000, 9000, 27000, 60000];
    const expected = [0.9, 0.1, 0.5, 1, 0].map((r, i) => bases[i] * (1 - 0.5 * r));
    assert.deepEqual(t.clock.delays, expected);
    t.clock.delays.forEach((d, i) => {
      assert.ok(d >= bases[i] * 0.5 && d <= bases[i]);
      if (i > 0) assert.ok(d > t.clock.delays[i - 1] * 0.9, "keeps growing despite jitter");
    });
  });

  it("uses the real Math.random by default (delays differ between sessions)", () => {
    const delays = new Set();
    for (let i = 0; i < 5; i++) {
      const clock = new FakeClock();
      const WebSocket = fakeWebSocketClass();
      const s = new Session("ws://x", { WebSocket, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout });
      s.connect();
      WebSocket.last.open();
      WebSocket.last.drop();
      delays.add(clock.delays[0]);
      assert.ok(clock.delays[0] >= 250 && clock.delays[0] <= 500);
      s.close();
    }
    assert.ok(delays.size > 1);
  });

  it("retries when the WebSocket constructor throws", () => {
    let fail = true;
    const Base = fakeWebSocketClass();
    class Flaky extends Base {
      constructor(url) {
        if (fail) throw new Error("boom");
        super(url);
      }
    }
    const clock = new FakeClock();
    const errors = [];
    const s = new Session("ws://x", {
      WebSocket: Flaky,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      onError: (e) => errors.push(e),
    });
    s.connect();
    assert.equal(s.state, "reconnecting");
    assert.equal(errors[0].message, "boom");
    fail = false;
    clock.runNext();
    Base.last.open();
    assert.equal(s.state, "open");
  });
});

describe("_DISCONNECT", () => {
  it("surfaces the message, closes, and stops reconnecting", () => {
    const t = makeSession();
    const seen = [];
    t.session.on("_DISCONNECT", (m) => seen.push(m));
    t.ws.receive("_DISCONNECT", "opened elsewhere");
    assert.deepEqual(t.calls.disconnects, ["opened elsewhere"]);
    assert.deepEqual(seen, ["opened elsewhere"]);
    assert.equal(t.ws.closeCalls, 1);
    assert.equal(t.session.state, "disconnected");
    t.ws.drop(); // the server's close arrives afterwards
    assert.equal(t.clock.pending, 0);
    assert.equal(t.WebSocket.instances.length, 1);
    assert.equal(t.calls.states.at(-1), "disconnected");
  });

  it("connect() afterwards connects again", () => {
    const t = makeSession();
    t.ws.receive("_DISCONNECT", "bye");
    t.session.connect();
    assert.equal(t.WebSocket.instances.length, 2);
    t.ws.open();
    assert.equal(t.session.state, "open");
  });
});

describe("events", () => {
  it("on/off route arbitrary event types", () => {
    const t = makeSession();
    const got = [];
    const h = (d) => got.push(d);
    t.session.on("CUSTOM", h);
    t.ws.receive("CUSTOM", { n: 1 });
    t.session.off("CUSTOM", h);
    t.ws.receive("CUSTOM", { n: 2 });
    const off = t.session.on("CUSTOM", h);
    t.ws.receive("CUSTOM", { n: 3 });
    off();
    t.ws.receive("CUSTOM", { n: 4 });
    assert.deepEqual(got, [{ n: 1 }, { n: 3 }]);
  });

  it("a throwing handler does not stop other handlers or later frames", () => {
    const t = makeSession();
    const got = [];
    const origError = console.error;
    console.error = () => {};
    try {
      t.session.on("E", () => {
        throw new Error("app bug");
      });
      t.session.on("E", (d) => got.push(d));
      t.ws.receive("E", 1);
      t.ws.receive("E", 2);
    } finally {
      console.error = origError;
    }
    assert.deepEqual(got, [1, 2]);
  });

  it("ignores frames that are not JSON or have no type", () => {
    const t = makeSession();
    const warn = console.warn;
    const warnings = [];
    console.warn = (m) => warnings.push(m);
    try {
      t.ws.receiveRaw("not json");
      t.ws.receiveRaw(JSON.stringify({ data: 1 }));
    } finally {
      console.warn = warn;
    }
    assert.equal(warnings.length, 2);
    assert.equal(t.session.state, "open");
  });

  it("_TOAST goes to onToast and to listeners", () => {
    const t = makeSession();
    const seen = [];
    t.session.on("_TOAST", (d) => seen.push(d));
    t.ws.receive("_TOAST", { type: "success", message: "saved" });
    assert.deepEqual(t.calls.toasts, [{ type: "success", message: "saved" }]);
    assert.deepEqual(seen, [{ type: "success", message: "saved" }]);
  });

  it("_TOAST defaults to the console, by severity", () => {
    const t = makeSession({ onToast: undefined });
    const orig = { info: console.info, warn: console.warn, error: console.error };
    const logged = [];
    console.info = (m) => logged.push(["info", m]);
    console.warn = (m) => logged.push(["warn", m]);
    console.error = (m) => logged.push(["error", m]);
    try {
      t.ws.receive("_TOAST", { type: "error", message: "bad" });
      t.ws.receive("_TOAST", { type: "warning", message: "hmm" });
      t.ws.receive("_TOAST", { type: "info", message: "fyi" });
    } finally {
      Object.assign(console, orig);
    }
    assert.deepEqual(logged, [
      ["error", "[ws-sync] bad"],
      ["warn", "[ws-sync] hmm"],
      ["info", "[ws-sync] fyi"],
    ]);
  });

  it("_DOWNLOAD goes to onDownload", () => {
    const t = makeSession();
    t.ws.receive("_DOWNLOAD", { filename: "a.txt", data: "aGk=" });
    assert.deepEqual(t.calls.downloads, [{ filename: "a.txt", data: "aGk=" }]);
  });

  it("_DOWNLOAD by default saves through a link when a document exists", async () => {
    const { JSDOM } = await import("jsdom");
    const dom = new JSDOM("<!doctype html><body></body>");
    const clicked = [];
    dom.window.HTMLAnchorElement.prototype.click = function () {
      clicked.push({ href: this.href, download: this.download, attached: this.isConnected });
    };
    const blobs = [];
    const saved = { document: globalThis.document, create: URL.createObjectURL, revoke: URL.revokeObjectURL };
    globalThis.document = dom.window.document;
    URL.createObjectURL = (blob) => {
      blobs.push(blob);
      return "blob:test/1";
    };
    URL.revokeObjectURL = () => {};
    try {
      const t = makeSession({ onDownload: undefined });
      t.ws.receive("_DOWNLOAD", { filename: "report.txt", data: Buffer.from("hello").toString("base64") });
      assert.deepEqual(clicked, [{ href: "blob:test/1", download: "report.txt", attached: true }]);
      assert.equal(await blobs[0].text(), "hello");
      assert.equal(dom.window.document.querySelectorAll("a").length, 0, "the link is removed again");
    } finally {
      globalThis.document = saved.document;
      if (saved.document === undefined) delete globalThis.document;
      URL.createObjectURL = saved.create;
      URL.revokeObjectURL = saved.revoke;
    }
  });

  it("_ERROR by default goes to the console, with the server-log ref of a hidden error", () => {
    const t = makeSession({ onError: undefined });
    const warn = console.warn;
    const logged = [];
    console.warn = (m) => logged.push(m);
    try {
      t.ws.receive("_ERROR", { event: "_ACTION:NOTES", message: "internal error", errors: [], id: 4, ref: "e7f3a1" });
      t.ws.receive("_ERROR", { event: "_PATCH:NOTES", message: "forbidden path", errors: [] });
    } finally {
      console.warn = warn;
    }
    assert.deepEqual(logged, ["[ws-sync] _ACTION:NOTES: internal error (ref e7f3a1)", "[ws-sync] _PATCH:NOTES: forbidden path"]);
  });

  it("_ERROR goes to onError", () => {
    const t = makeSession();
    const err = { event: "_PATCH:NOTES", message: "forbidden path", errors: [{ loc: ["x"] }] };
    t.ws.receive("_ERROR", err);
    assert.deepEqual(t.calls.errors, [err]);
  });
});

describe("binary frames", () => {
  it("pairs _BIN_META with the next binary frame", () => {
    const t = makeSession();
    const got = [];
    t.session.on("IMAGE", (d) => got.push(d));
    const bytes = new Uint8Array([1, 2, 3]).buffer;
    t.ws.receive("_BIN_META", { type: "IMAGE", metadata: { name: "a.png", size: 3 } });
    assert.equal(got.length, 0, "nothing until the bytes arrive");
    t.ws.receiveBinary(bytes);
    assert.equal(got.length, 1);
    assert.equal(got[0].data, bytes);
    assert.equal(got[0].name, "a.png");
    assert.equal(got[0].size, 3);
  });

  it("ignores a binary frame without _BIN_META, and a _BIN_META not followed by bytes", () => {
    const t = makeSession();
    const got = [];
    t.session.on("IMAGE", (d) => got.push(d));
    const warn = console.warn;
    console.warn = () => {};
    try {
      t.ws.receiveBinary(new Uint8Array([9]).buffer);
      t.ws.receive("_BIN_META", { type: "IMAGE", metadata: {} });
      t.ws.receive("OTHER", null); // breaks the pair
      t.ws.receiveBinary(new Uint8Array([1]).buffer);
    } finally {
      console.warn = warn;
    }
    assert.equal(got.length, 0);
    t.ws.receive("_BIN_META", { type: "IMAGE", metadata: { n: 1 } });
    t.ws.receiveBinary(new Uint8Array([7]).buffer);
    assert.deepEqual(got.map((d) => [d.n, new Uint8Array(d.data)[0]]), [[1, 7]]);
  });

  it("a dropped connection forgets a half-received pair", () => {
    const t = makeSession();
    const got = [];
    t.session.on("IMAGE", (d) => got.push(d));
    t.ws.receive("_BIN_META", { type: "IMAGE", metadata: {} });
    t.ws.drop();
    t.clock.runNext();
    t.ws.open();
    const warn = console.warn;
    console.warn = () => {};
    try {
      t.ws.receiveBinary(new Uint8Array([1]).buffer);
    } finally {
      console.warn = warn;
    }
    assert.equal(got.length, 0);
  });

  it("sendBinary sends _BIN_META then the bytes", () => {
    const t = makeSession();
    const bytes = new Uint8Array([4, 5, 6]);
    assert.equal(t.session.sendBinary("_ACTION:FILES", { type: "UPLOAD", name: "x.bin" }, bytes), true);
    const sent = t.ws.sent.filter((f) => !String(f).includes('"_HELLO"'));
    assert.equal(sent.length, 2);
    assert.deepEqual(JSON.parse(sent[0]), {
      type: "_BIN_META",
      data: { type: "_ACTION:FILES", metadata: { type: "UPLOAD", name: "x.bin" } },
    });
    assert.equal(sent[1], bytes);
    t.ws.drop();
    assert.equal(t.session.sendBinary("_ACTION:FILES", {}, bytes), false);
  });
});

describe("user-session handshake", () => {
  it("answers _REQUEST_USER_SESSION with the ids from the options", () => {
    const t = makeSession({ userId: "u1", sessionId: "s1" });
    t.ws.receive("_REQUEST_USER_SESSION");
    assert.deepEqual(t.ws.framesOf("_USER_SESSION"), [{ type: "_USER_SESSION", data: { user: "u1", session: "s1" } }]);
  });

  it("generates ids once and keeps them in local (user) and session (session) storage", () => {
    const local = new MemoryStorage();
    const tab = new MemoryStorage();
    const first = makeSession({ localStorage: local, sessionStorage: tab });
    first.ws.receive("_REQUEST_USER_SESSION");
    first.ws.receive("_REQUEST_USER_SESSION");
    const [a, b] = first.ws.framesOf("_USER_SESSION").map((f) => f.data);
    assert.deepEqual(a, b, "stable across requests");
    assert.match(a.user, /^[0-9a-f-]{32,36}$/);
    assert.notEqual(a.user, a.session);
    assert.equal(local.getItem("ws-sync:user"), a.user);
    assert.equal(tab.getItem("ws-sync:session"), a.session);

    // A page reload: same storage, new Session object.
    const reload = makeSession({ localStorage: local, sessionStorage: tab });
    reload.ws.receive("_REQUEST_USER_SESSION");
    assert.deepEqual(reload.ws.framesOf("_USER_SESSION")[0].data, a);

    // A new tab: same user, new session.
    const otherTab = makeSession({ localStorage: local, sessionStorage: new MemoryStorage() });
    otherTab.ws.receive("_REQUEST_USER_SESSION");
    const c = otherTab.ws.framesOf("_USER_SESSION")[0].data;
    assert.equal(c.user, a.user);
    assert.notEqual(c.session, a.session);
  });

  it("works without storage and when storage throws", () => {
    const throwing = {
      getItem() {
        throw new Error("denied");
      },
      setItem() {
        throw new Error("denied");
      },
    };
    const t = makeSession({ localStorage: throwing, sessionStorage: null });
    t.ws.receive("_REQUEST_USER_SESSION");
    const { user, session } = t.ws.framesOf("_USER_SESSION")[0].data;
    assert.equal(typeof user, "string");
    assert.equal(typeof session, "string");
    assert.ok(user.length >= 32 && session.length >= 32);
  });
});
