/**
 * Type declarations for react.js, the React binding of the ws-sync client.
 */
import type { ReactNode } from "react";
import type { ConnectionState, Pointer, Session, SyncedStore, TaskHandle } from "./ws-sync.js";

export interface SessionProviderProps {
  session: Session;
  /** Call `session.connect()` on mount (default true). The provider never closes the session. */
  connect?: boolean;
  children?: ReactNode;
}

export function SessionProvider(props: SessionProviderProps): ReactNode;

/** The session of the nearest SessionProvider, or null. */
export function useSession(): Session | null;

/**
 * The connection state ("connecting" | "open" | "reconnecting" | "offline" |
 * "closed" | "disconnected"); re-renders on change. Uses `session` or the
 * provider's. Pair "reconnecting"/"offline" with `session.retryNow()`, and
 * "disconnected" with `session.disconnectMessage`.
 */
export function useConnectionState(session?: Session): ConnectionState;

export interface UseSyncedOptions {
  /** Use this session instead of the provider's. */
  session?: Session;
  /** Offline edit policy for this store (see SessionOptions.offlineEdits). */
  offlineEdits?: "queue" | "drop";
  /**
   * Server action types for JS names that do not follow the convention
   * (`{rename: "SET_NAME"}`). A `setX` name listed here calls the action
   * instead of setting field `x`.
   */
  actionTypes?: Record<string, string>;
  /**
   * true (default): callers use `store.action` (sends `$id`, returns a Promise
   * of the result; bounded by SessionOptions.maxInFlight). false:
   * `store.sendAction` (no `$id`, returns whether it was sent), for servers
   * without the `_ACTION_RESULT` extension.
   */
  awaitResults?: boolean;
}

/**
 * An action caller. Its promise is already handled: a fire-and-forget call
 * (`onClick={() => notes.addNote(x)}`) causes no unhandled rejection, while
 * awaiting it still throws. Arguments become the action params:
 * - no argument → `{type}`
 * - exactly one plain object → its members (`notes.addUser({user_data})` → `{type, user_data}`)
 * - anything else → `{type, "$args": [...args]}`; the server binds `$args` to
 *   the method's parameters in order (`notes.rename("x")` → `rename(new_title="x")`).
 *
 * To pass one object as a single positional argument, wrap it:
 * `notes.addUser({ user_data: {...} })`.
 */
export type ActionCaller<A extends unknown[] = any[], R = unknown> = (...args: A) => Promise<R>;

/** Typed action callers: `{ rename(newTitle: string): void }` → `notes.rename("x"): Promise<void>`. */
export type ActionCallers<A> = {
  [K in keyof A]: A[K] extends (...args: infer P) => infer R ? (...args: P) => Promise<Awaited<R>> : never;
};

/** `setTitle(value | prev => value)` for each top-level field `title`; sends a `_PATCH`. */
export type Setters<S> = {
  [K in keyof S & string as `set${Capitalize<K>}`]: (value: S[K] | ((prev: S[K]) => S[K])) => boolean;
};

export interface SyncedHelpers<S> {
  /** The underlying store. */
  $store: SyncedStore<S>;
  /** The current state object itself. */
  $state: S;
  set(path: Pointer, value: unknown): boolean;
  update(fn: (state: S) => S): boolean;
  /** `store.action`, its promise already handled (see ActionCaller). */
  action<R = unknown>(type: string, params?: Record<string, unknown>): Promise<R>;
  sendAction(type: string, params?: Record<string, unknown>): boolean;
  startTask<R = unknown>(type: string, params?: Record<string, unknown>): TaskHandle<R>;
  cancelTask(type: string): boolean;
}

/**
 * What useSynced returns: the state's fields, `set<Field>` setters, helpers,
 * and a caller for any other camelCase name (`addNote` → action `ADD_NOTE`).
 * Type the callers with the second type parameter of useSynced; untyped
 * names are still callable from JavaScript.
 *
 * The object is new whenever the state changes (so it works as a React
 * dependency); its functions stay the same for the life of the component.
 * `Object.keys`, spread and JSON see only the state fields. Fields win over
 * callers and helpers of the same name.
 */
export type Synced<S, A = {}> = S & Setters<S> & SyncedHelpers<S> & ActionCallers<A>;

/**
 * Subscribe to the synced object `key` of the provider's session (or
 * `options.session`), re-rendering on every change.
 *
 * ```ts
 * const notes = useSynced<{ title: string; notes: string[] }, {
 *   rename(newTitle: string): void;
 *   addNote(note: string): void;
 * }>("NOTES", { title: "", notes: [] });
 * ```
 */
export function useSynced<S extends object, A = {}>(key: string, initialState: S, options?: UseSyncedOptions): Synced<S, A>;

/** Action params from call arguments (see ActionCaller). */
export function actionParams(args: unknown[]): Record<string, unknown>;
