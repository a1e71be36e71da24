// Session ids: unguessable, from the platform's CSPRNG (crypto.randomUUID, or
// getRandomValues where randomUUID is missing), never Math.random.
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { makeSession } from "./helpers.js";

const realCrypto = Object.getOwnPropertyDescriptor(globalThis, "crypto");
const real = globalThis.crypto;
const realRandom = Math.random;

function withCrypto(value) {
  Object.defineProperty(globalThis, "crypto", { value, configurable: true, writable: true });
}

function answeredIds() {
  const t = makeSession();
  t.ws.receive("_REQUEST_USER_SESSION");
  return t.ws.framesOf("_USER_SESSION")[0].data;
}

afterEach(() => {
  Object.defineProperty(globalThis, "crypto", realCrypto);
  Math.random = realRandom;
});

describe("session ids", () => {
  it("are crypto.randomUUID() values", () => {
    const made = [];
    withCrypto({ randomUUID: () => (made.push(real.randomUUID()), made.at(-1)) });
    const { user, session } = answeredIds();
    assert.deepEqual([user, session], made.slice(-2)); // the first one prefixes call ids
    assert.match(session, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("come from getRandomValues where randomUUID is missing (not a secure context)", () => {
    Math.random = () => {
      throw new Error("Math.random must not make ids");
    };
    withCrypto({ getRandomValues: (bytes) => real.getRandomValues(bytes) });
    const { user, session } = answeredIds();
    assert.match(user, /^[0-9a-f]{32}$/);
    assert.match(session, /^[0-9a-f]{32}$/);
    assert.notEqual(user, session);
  });

  it("are never made up without a CSPRNG (the session itself still works)", () => {
    withCrypto(undefined);
    const t = makeSession();
    assert.throws(() => t.session.userSession(), /getRandomValues/);
    const notes = t.session.store("NOTES", {});
    t.ws.receive("_SET:NOTES", { title: "t" });
    assert.equal(notes.getState().title, "t");
  });
});
