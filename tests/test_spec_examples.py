"""Every Python example of the README spec, as written there, runs and syncs.

The code blocks below are copied verbatim from the spec (only the imports a
reader would add are added, and `Task`, which the spec leaves undefined)."""

from __future__ import annotations

import asyncio
from typing import Any

import jsonpatch
from fakes import FakeSession
from pydantic import BaseModel, computed_field

from ws_sync import remote_action, remote_task, sync_all, sync_only
from ws_sync.serialize import dump
from ws_sync.synced_model import SyncedAsCamelCase


def replay(obj: Any, session: FakeSession, before: dict[str, Any]) -> dict[str, Any]:
    """Apply what `session` received (and anything still pending) to `before`."""
    after = before
    for event in session.take():
        assert event["type"] == f"_PATCH:{obj.sync.key}"
        after = jsonpatch.apply_patch(after, event["data"])
    after = jsonpatch.apply_patch(after, dump(obj.sync.collect()))
    assert after == obj.sync.state()
    return after


# --- Syncing with Type Safety (Recommended) ---------------------------------


class User(BaseModel):
    name: str
    age: int
    email: str | None = None


class Notes(BaseModel):
    title: str = "My Notes"
    notes: list[str] = []

    @sync_all("NOTES")
    def model_post_init(self, __context):
        pass  # Sync is automatically set up

    @property
    def total_length(self):
        return sum(len(note) for note in self.notes)

    @remote_action("RENAME")
    async def rename(self, new_title: str):
        self.title = new_title
        await self.sync()

    @remote_action("ADD_NOTE")
    async def add_note(self, note: str):
        self.notes.append(note)
        await self.sync()


async def test_pydantic_notes() -> None:
    session = FakeSession()
    notes = Notes()
    notes.sync.attach(session)
    assert notes.sync.state() == {"title": "My Notes", "notes": [], "total_length": 0}
    await notes.add_note("hello")
    await notes.rename("Renamed")
    assert session.take() == [
        {
            "type": "_PATCH:NOTES",
            "data": [
                {"op": "add", "path": "/notes/0", "value": "hello"},
                {"op": "add", "path": "/total_length", "value": 5},
            ],
        },
        {"type": "_PATCH:NOTES", "data": [{"op": "replace", "path": "/title", "value": "Renamed"}]},
    ]


class TeamManager:
    users: list[User]  # List of validated User models
    user_index: dict[str, User]  # Dict with validated User values

    @sync_all("TEAM")
    def __init__(self):
        self.users: list[User] = []
        self.user_index: dict[str, User] = {}

    @remote_action("ADD_USER")
    async def add_user(self, user_data: dict):
        # Automatic validation and conversion
        user = User(**user_data)
        self.users.append(user)
        self.user_index[user.name] = user
        await self.sync()


async def test_team_manager() -> None:
    session = FakeSession()
    team = TeamManager()
    team.sync.attach(session)
    before = team.sync.state()
    await team.add_user({"name": "ann", "age": "30"})
    replay(team, session, before)
    assert isinstance(team.users[0], User) and team.users[0].age == 30
    team.users[0].age = 31  # one object in two places
    ops = sorted(team.sync.collect(), key=lambda op: op["path"])
    assert ops == [
        {"op": "replace", "path": "/user_index/ann/age", "value": 31},
        {"op": "replace", "path": "/users/0/age", "value": 31},
    ]


# --- Syncing Simple Objects (Basic Version) ---------------------------------


class BasicNotes:
    @sync_all("NOTES")
    def __init__(self):
        self.title = "My Notes"
        self.notes = []

    async def rename(self, new_title):
        self.title = new_title
        await self.sync()

    async def add(self, note):
        self.notes.append(note)
        await self.sync()


async def test_basic_notes() -> None:
    session = FakeSession()
    notes = BasicNotes()
    notes.sync.attach(session)
    await notes.add("n1")
    await notes.rename("T")
    assert [e["data"] for e in session.take()] == [
        [{"op": "add", "path": "/notes/0", "value": "n1"}],
        [{"op": "replace", "path": "/title", "value": "T"}],
    ]


# --- Computed Fields and Auto-Updates ----------------------------------------


class UserProfile(BaseModel):
    first_name: str
    last_name: str

    @computed_field
    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @sync_all("PROFILE")
    def model_post_init(self, __context):
        pass


def test_computed_field_follows_its_inputs() -> None:
    p = UserProfile(first_name="Ada", last_name="Lovelace")
    p.first_name = "Augusta"
    assert p.sync.collect() == [
        {"op": "replace", "path": "/first_name", "value": "Augusta"},
        {"op": "add", "path": "/full_name", "value": "Augusta Lovelace"},
    ]


# --- Actions and Tasks --------------------------------------------------------


class Task(BaseModel):
    title: str
    done: bool = False


class TaskManager(BaseModel):
    tasks: list[Task] = []

    @sync_all("TASKS")
    def model_post_init(self, __context):
        pass

    @remote_action("CREATE_TASK")
    async def create_task(self, task_data: Task):
        # Validates task_data against Task model
        self.tasks.append(task_data)
        await self.sync()

    @remote_task("PROCESS_BATCH")
    async def process_batch(self, items: list[str]):
        for item in items:
            # Long-running, cancellable operation
            await asyncio.sleep(1)
            yield f"Processed {item}"


async def test_task_manager() -> None:
    session = FakeSession()
    tm = TaskManager()
    tm.sync.attach(session)
    before = tm.sync.state()
    await tm.create_task(Task(title="write"))
    replay(tm, session, before)
    assert tm.sync.state() == {"tasks": [{"title": "write", "done": False}]}


# --- CamelCase Conversion ------------------------------------------------------


class CamelProfile(SyncedAsCamelCase, BaseModel):
    first_name: str  # becomes "firstName" in frontend
    last_name: str  # becomes "lastName" in frontend

    @sync_all("PROFILE")
    def model_post_init(self, __context):
        pass


def test_camel_case_profile() -> None:
    p = CamelProfile(first_name="a", last_name="b")
    assert p.sync.state() == {"firstName": "a", "lastName": "b"}


# --- Manual Attribute Selection ----------------------------------------------


class ManualNotes:
    @sync_only(
        "NOTES",
        title=...,  # sync as-is
        notes=...,  # sync as-is
        total_length="size",  # sync as "size" in frontend
    )
    def __init__(self):
        self.title = "My Notes"
        self.notes = []
        self.private_data = "secret"  # not synced

    @property
    def total_length(self) -> int:
        return sum(len(n) for n in self.notes)


def test_manual_selection() -> None:
    n = ManualNotes()
    assert n.sync.state() == {"title": "My Notes", "notes": [], "size": 0}
