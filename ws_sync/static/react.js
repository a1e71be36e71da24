/**
 * React binding for the ws-sync client. React is a peer: this module imports
 * "react" and bundles nothing. With a bundler that just works; in a browser
 * without one, map "react" (and "react-dom") in an import map.
 *
 *   <SessionProvider session={session}><Notes /></SessionProvider>
 *
 *   const notes = useSynced("NOTES", { title: "", notes: [] });
 *   notes.title;              // state field
 *   notes.rename("x");        // _ACTION:NOTES {"type": "RENAME", "$args": ["x"], "$id": …}
 *   notes.addNote("y");       // _ACTION:NOTES {"type": "ADD_NOTE", "$args": ["y"], "$id": …}
 *   notes.setTitle("z");      // _PATCH:NOTES [{"op": "replace", "path": "/title", "value": "z"}]
 *
 * Action callers return a Promise of the result; ignoring it is safe (no
 * unhandled rejection).
 *
 * @module ws-sync/react
 */
import { createContext, createElement, useContext, useEffect, useMemo, useRef, useSyncExternalStore } from "react";
import { toActionType } from "./ws-sync.js";

const SessionContext = createContext(null);

/**
 * Provide `session` to `useSynced` below. Connects it on mount (unless
 * `connect={false}`); never closes it: the app owns the session.
 */
export function SessionProvider({ session, connect = true, children }) {
  useEffect(() => {
    if (connect) session.connect();
  }, [session, connect]);
  return createElement(SessionContext.Provider, { value: session }, children);
}

/** The session of the nearest SessionProvider (or null). */
export function useSession() {
  return useContext(SessionContext);
}

/** The connection state, re-rendering on change: "connecting" | "open" | "reconnecting" | "offline" | "closed" | "disconnected". */
export function useConnectionState(session) {
  const s = requireSession(session, useContext(SessionContext), "useConnectionState");
  const subscribe = useMemo(() => (cb) => s.subscribeState(cb), [s]);
  const get = () => s.state;
  return useSyncExternalStore(subscribe, get, get);
}

function requireSession(explicit, fromContext, hook) {
  const session = explicit ?? fromContext;
  if (!session) throw new Error(`${hook}: no session; wrap in <SessionProvider session={…}> or pass options.session`);
  return session;
}

/**
 * Subscribe to the synced object `key` and return a view of it: its state
 * fields, plus callers for actions and setters (see react.d.ts for the rules).
 * The view is a new object whenever the state changes; its functions are
 * stable for the life of the component.
 */
export function useSynced(key, initialState, options = {}) {
  const session = requireSession(options.session, useContext(SessionContext), "useSynced");
  const store = session.store(key, initialState, options);
  const state = useSyncExternalStore(store.subscribe, store.getState, store.getState);
  // Options are read when a function is called, so a fresh options literal
  // on every render neither rebuilds the view nor the callers.
  const opts = useRef(options);
  opts.current = options;
  const functions = useMemo(() => new Map(), [store]);
  return useMemo(() => makeView(store, state, functions, opts), [store, state, functions]);
}

/** Names that must not turn into action calls: they are probed by `await`, JSON, devtools. */
const NOT_ACTIONS = new Set(["then", "toJSON", "inspect", "nodeType", "tagName", "render"]);
const CAMEL_NAME = /^[a-z][A-Za-z0-9]*$/;
const SETTER = /^set[A-Z]/;

function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Action params from call arguments: none → `{}`; one plain object → its
 * members; anything else → `{"$args": [...]}`, which the server binds to the
 * method's parameters in order.
 */
export function actionParams(args) {
  if (args.length === 0) return {};
  if (args.length === 1 && isPlainObject(args[0])) return args[0];
  return { $args: args };
}

function makeView(store, state, functions, opts) {
  const helpers = {
    $store: store,
    $state: state,
    set: (path, value) => store.set(path, value),
    update: (fn) => store.update(fn),
    action: (type, params) => handled(store.action(type, params)),
    sendAction: (type, params) => store.sendAction(type, params),
    startTask: (type, params) => store.startTask(type, params),
    cancelTask: (type) => store.cancelTask(type),
  };
  const target = isPlainObject(state) ? state : {};
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop !== "string") return Reflect.get(t, prop);
      if (Object.hasOwn(t, prop)) return t[prop];
      if (Object.hasOwn(helpers, prop)) return helpers[prop];
      if (prop in Object.prototype || NOT_ACTIONS.has(prop) || !CAMEL_NAME.test(prop)) return Reflect.get(t, prop);
      if (!functions.has(prop)) functions.set(prop, makeFunction(store, prop, opts));
      return functions.get(prop);
    },
  });
}

/**
 * The function behind a camelCase name: `setFoo` sets field `foo` (unless
 * `options.actionTypes` names it), any other name calls an action.
 */
function makeFunction(store, name, opts) {
  return (...args) => {
    const { actionTypes, awaitResults = true } = opts.current;
    if (SETTER.test(name) && !actionTypes?.[name]) return setField(store, name.slice(3), args[0]);
    const type = actionTypes?.[name] ?? toActionType(name);
    const params = actionParams(args);
    return awaitResults ? handled(store.action(type, params)) : store.sendAction(type, params);
  };
}

/**
 * `promise`, marked as handled. UI code calls actions fire-and-forget
 * (`onClick={() => notes.addNote(x)}`); a failure is already reported (the
 * server's `_ERROR` reaches onError, a lost connection the connection state),
 * so an ignored promise must not also be an unhandled rejection. Awaiting it
 * still throws.
 */
function handled(promise) {
  promise.catch(() => {});
  return promise;
}

/** Set a top-level field; `value` may be a function of the current value, as with useState. */
function setField(store, suffix, value) {
  const current = store.getState();
  // An existing field spelled as written wins (setURL → URL), else lowerCamel (setTitle → title).
  const field = current && Object.hasOwn(current, suffix) ? suffix : suffix[0].toLowerCase() + suffix.slice(1);
  return store.set([field], typeof value === "function" ? value(current?.[field]) : value);
}
