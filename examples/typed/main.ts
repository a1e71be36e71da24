// The typed frontend of app.py: every action and task name, param and
// result below is checked against synced.ts by `tsc --noEmit`.
import { Session } from "../../ws_sync/static/ws-sync.js";
import { useSynced } from "../../ws_sync/static/react.js";
import { TodosKey, type Todos, type TodosActions, type TodosCallers, type TodosTasks } from "./synced.js";

const session = new Session("ws://127.0.0.1:8000/ws");
const todos = session.store<Todos, TodosActions, TodosTasks>(TodosKey);

export async function addAndToggle(text: string): Promise<number> {
  const index: number = await todos.action("ADD_TODO", { text });
  await todos.action("TOGGLE", { index });
  return index;
}

export function archive(): void {
  const run = todos.startTask("ARCHIVE_DONE"); // its only param is optional
  run.done.then((done) => console.log(done.status));
}

export function openCount(): number {
  return todos.getState().openCount;
}

// In a React component: fields, setters and the action callers, all typed.
export function useTodos(): () => Promise<number> {
  const synced = useSynced<Todos, TodosCallers>(TodosKey, { title: "", todoItems: [], openCount: 0 });
  synced.setTitle("Tomorrow");
  return () => synced.addTodo({ text: synced.title });
}
