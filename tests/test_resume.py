"""Protocol 2 over a real endpoint: versions on every state frame, the
`_HELLO` that says what a client holds, resume with only the missed commits,
and acknowledged writes."""

import json
from typing import Any

from session_helpers import Notes, make_app, recv, send
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from ws_sync import Session, remote_action, sync_endpoint, sync_only
from ws_sync.commit import CommitLog


def hello(ws: Any, versions: dict[str, Any] | None = None) -> None:
    send(ws, "_HELLO", {"protocol": 2, "versions": versions or {}})


def v2(ws: Any) -> dict[str, Any]:
    return recv(ws, versions=True)


def write(ws: Any, event: str, data: Any, v: int, write_id: str) -> None:
    ws.send_text(json.dumps({"type": event, "data": data, "v": v, "$id": write_id}))


class Board:
    cards: list[str]

    @sync_only("BOARD", cards=...)
    def __init__(self) -> None:
        self.cards: list[str] = []

    @remote_action("ADD")
    async def add(self, text: str) -> None:
        self.cards.append(text)
        await self.sync()


def shared_board_app(board: Board, **options: Any) -> Starlette:
    def join() -> Board:
        from ws_sync import session_context

        session_context.get().attach(board)
        return board

    return Starlette(routes=[sync_endpoint(join, user_sessions=False, **options)])


def test_a_versioned_client_gets_hello_then_versioned_state() -> None:
    app, _ = make_app(Notes)
    with TestClient(app) as tc, tc.websocket_connect("/ws?ws_sync=2") as ws:
        hello(ws)
        assert v2(ws) == {"type": "_HELLO", "data": {"protocol": 2}}
        first = v2(ws)
        assert first["type"] == "_SET:NOTES" and first["v"] == 0
        assert isinstance(first["epoch"], str) and len(first["epoch"]) == 8
        send(ws, "_ACTION:NOTES", {"type": "ADD_NOTE", "note": "a"})
        patch = v2(ws)
        assert patch["type"] == "_PATCH:NOTES" and patch["v"] == 1


def test_resume_sends_only_what_was_missed() -> None:
    board = Board()
    app = shared_board_app(board)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            state = opened(ws)
        epoch, version = state["epoch"], state["v"]
        with tc.websocket_connect("/ws") as other:  # a protocol-1 client edits meanwhile
            recv(other)
            send(other, "_ACTION:BOARD", {"type": "ADD", "text": "x"})
            send(other, "_ACTION:BOARD", {"type": "ADD", "text": "y"})
            assert recv(other)["type"] == "_PATCH:BOARD"
            assert recv(other)["type"] == "_PATCH:BOARD"
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            hello(ws, {"BOARD": {"epoch": epoch, "v": version}})
            assert v2(ws)["type"] == "_HELLO"
            missed = [v2(ws), v2(ws)]
            assert [m["v"] for m in missed] == [version + 1, version + 2]
            assert [m["data"] for m in missed] == [
                [{"op": "add", "path": "/cards/0", "value": "x"}],
                [{"op": "add", "path": "/cards/1", "value": "y"}],
            ]
            send(ws, "_GET:BOARD", None)  # nothing else came before this answer
            assert v2(ws)["type"] == "_SET:BOARD"


def test_an_up_to_date_client_gets_nothing_and_an_unknown_epoch_gets_the_state() -> None:
    board = Board()
    app = shared_board_app(board)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            log = board.sync.log
            hello(ws, {"BOARD": {"epoch": log.epoch, "v": log.version}})
            assert v2(ws)["type"] == "_HELLO"
            send(ws, "_GET:BOARD", None)
            assert v2(ws)["type"] == "_SET:BOARD"  # the first frame is the answer
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            hello(ws, {"BOARD": {"epoch": "elsewhere", "v": 0}})
            v2(ws)
            assert v2(ws)["type"] == "_SET:BOARD"


def test_a_client_behind_the_history_gets_the_state() -> None:
    board = Board()
    board.sync.log = CommitLog(max_commits=2)
    app = shared_board_app(board)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            state = opened(ws)
            for i in range(3):
                send(ws, "_ACTION:BOARD", {"type": "ADD", "text": str(i)})
                v2(ws)
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            hello(ws, {"BOARD": {"epoch": state["epoch"], "v": state["v"]}})
            v2(ws)
            again = v2(ws)
            assert again["type"] == "_SET:BOARD" and again["v"] == 3
            assert again["data"] == {"cards": ["0", "1", "2"]}


def test_user_sessions_resume_from_versions_too() -> None:
    app, sessions = make_app(Notes, user_sessions=True)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            hello(ws)
            assert v2(ws)["type"] == "_REQUEST_USER_SESSION"
            assert v2(ws)["type"] == "_HELLO"
            send(ws, "_USER_SESSION", {"user": "u", "session": "s"})
            state = v2(ws)
        notes = sessions.last().objects["NOTES"]
        notes.notes.append("while away")
        notes.sync.flush()
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            send(ws, "_USER_SESSION", {"user": "u", "session": "s"})  # either order
            hello(ws, {"NOTES": {"epoch": state["epoch"], "v": state["v"]}})
            assert v2(ws)["type"] == "_REQUEST_USER_SESSION"
            assert v2(ws)["type"] == "_HELLO"
            missed = v2(ws)
            assert missed["type"] == "_PATCH:NOTES" and missed["v"] == state["v"] + 1
            assert {"op": "add", "path": "/notes/0", "value": "while away"} in missed["data"]


def test_a_versioned_write_is_acknowledged_and_published_as_one_commit() -> None:
    board = Board()
    app = shared_board_app(board)
    with (
        TestClient(app) as tc,
        tc.websocket_connect("/ws?ws_sync=2") as a,
        tc.websocket_connect("/ws") as b,
    ):
        hello(a)
        v2(a)
        v2(a)
        recv(b)
        ops = [{"op": "add", "path": "/cards/-", "value": "c"}]
        write(a, "_PATCH:BOARD", ops, 0, "w1")
        ack = v2(a)
        assert ack == {
            "type": "_PATCH:BOARD",
            "data": [{"op": "add", "path": "/cards/0", "value": "c"}],
            "v": 1,
            "ack": "w1",
        }
        assert v2(b) == ack  # one frame for every subscriber
        write(a, "_PATCH:BOARD", [{"op": "replace", "path": "/cards/0", "value": "c"}], 1, "w2")
        same = v2(a)  # changed nothing: still a commit, still acknowledged
        assert same == {"type": "_PATCH:BOARD", "data": [], "v": 2, "ack": "w2"}
        assert v2(b) == same
        write(a, "_PATCH:BOARD", [{"op": "add", "path": "/cards/-", "value": 5}], 2, "w3")
        refused = v2(a)
        assert refused["type"] == "_ERROR" and refused["data"]["id"] == "w3"
        assert v2(a)["type"] == "_SET:BOARD"
        assert board.cards == ["c"] and board.sync.log.version == 2


def test_a_late_hello_is_answered_on_a_hand_made_endpoint() -> None:
    async def endpoint(ws: WebSocket) -> None:
        session = Session()
        notes = Notes()
        await session.handle_connection(ws)
        del notes

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    with TestClient(app) as tc, tc.websocket_connect("/ws?ws_sync=2") as ws:
        assert v2(ws)["v"] == 0  # the state came first, versioned anyway
        hello(ws)
        assert v2(ws) == {"type": "_HELLO", "data": {"protocol": 2}}


def test_a_protocol_1_client_sees_no_hello_and_writes_as_before() -> None:
    app, _ = make_app(Notes)
    with TestClient(app) as tc, tc.websocket_connect("/ws") as ws:
        assert recv(ws)["type"] == "_SET:NOTES"
        send(ws, "_PATCH:NOTES", [{"op": "replace", "path": "/title", "value": "t"}])
        send(ws, "_GET:NOTES", None)
        assert recv(ws)["data"]["title"] == "t"  # no echo: the value was not coerced


def test_resuming_a_big_state_after_one_change_costs_one_small_frame() -> None:
    class Big:
        @sync_only("BIG", items=...)
        def __init__(self) -> None:
            self.items = [{"id": i, "text": f"item {i}"} for i in range(100_000)]

    big = Big()
    app = shared_board_app(big)  # type: ignore[arg-type]
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            state = opened(ws)
        big.items[500]["text"] = "changed"
        big.sync.flush()
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            hello(ws, {"BIG": {"epoch": state["epoch"], "v": state["v"]}})
            v2(ws)
            send(ws, "_BARRIER", None)
            frames = []
            while (frame := ws.receive_text()) and '"_BARRIER"' not in frame:
                frames.append(frame)
        assert sum(len(f) for f in frames) < 20_000
        assert len(frames) == 1 and '"changed"' in frames[0]


class Cards:
    cards: list[dict[str, Any]]

    @sync_only("CARDS", cards=...)
    def __init__(self) -> None:
        self.cards = [{"text": t, "votes": 0} for t in ("a", "b", "c")]


def opened(ws: Any) -> dict[str, Any]:
    hello(ws)
    assert v2(ws)["type"] == "_HELLO"
    return v2(ws)


def versioned(ws: Any, event: str, ops: Any, base: dict[str, Any], v: int, write_id: str) -> None:
    frame = {"type": event, "data": ops, "v": v, "epoch": base["epoch"], "$id": write_id}
    ws.send_text(json.dumps(frame))


def test_a_write_on_an_old_version_is_moved_past_what_was_committed() -> None:
    cards = Cards()
    app = shared_board_app(cards)  # type: ignore[arg-type]
    with (
        TestClient(app) as tc,
        tc.websocket_connect("/ws?ws_sync=2") as a,
        tc.websocket_connect("/ws?ws_sync=2") as b,
    ):
        base = opened(a)
        opened(b)
        # b inserts at the front; a, not having seen it, edits card "b" at index 1
        card = {"text": "z", "votes": 0}
        versioned(
            b, "_PATCH:CARDS", [{"op": "add", "path": "/cards/0", "value": card}], base, 0, "b1"
        )
        assert v2(b)["ack"] == "b1"
        edit = [{"op": "replace", "path": "/cards/1/text", "value": "B"}]
        versioned(a, "_PATCH:CARDS", edit, base, 0, "a1")
        assert v2(a)["ack"] == "b1"  # b's commit first
        ack = v2(a)
        assert ack["ack"] == "a1" and ack["v"] == 2 and "dropped" not in ack
        assert ack["data"] == [{"op": "replace", "path": "/cards/2/text", "value": "B"}]
        assert [c["text"] for c in cards.cards] == ["z", "a", "B", "c"]


def test_a_write_to_a_removed_item_is_dropped_and_the_ack_says_so() -> None:
    cards = Cards()
    app = shared_board_app(cards)  # type: ignore[arg-type]
    with TestClient(app) as tc, tc.websocket_connect("/ws?ws_sync=2") as a:
        base = opened(a)
        del cards.cards[0]
        cards.sync.flush()
        assert v2(a)["v"] == 1
        ops = [
            {"op": "replace", "path": "/cards/0/votes", "value": 3},
            {"op": "replace", "path": "/cards/2/votes", "value": 5},
        ]
        versioned(a, "_PATCH:CARDS", ops, base, 0, "x")
        ack = v2(a)
        assert ack["dropped"] == [0]
        assert ack["data"] == [{"op": "replace", "path": "/cards/1/votes", "value": 5}]
        assert [(c["text"], c["votes"]) for c in cards.cards] == [("b", 0), ("c", 5)]


def test_an_offline_edit_lands_on_its_own_card_after_reconnect() -> None:
    cards = Cards()
    app = shared_board_app(cards)  # type: ignore[arg-type]
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as a:
            base = opened(a)
        with tc.websocket_connect("/ws?ws_sync=2") as b:  # meanwhile, card "a" is deleted
            opened(b)
            versioned(b, "_PATCH:CARDS", [{"op": "remove", "path": "/cards/0"}], base, 0, "del")
            assert v2(b)["ack"] == "del"
        with tc.websocket_connect("/ws?ws_sync=2") as a:
            hello(a, {"CARDS": {"epoch": base["epoch"], "v": base["v"]}})
            assert v2(a)["type"] == "_HELLO"
            assert v2(a)["ack"] == "del"  # the resume
            edit = [{"op": "replace", "path": "/cards/2/text", "value": "C!"}]  # made offline
            versioned(a, "_PATCH:CARDS", edit, base, 0, "off")
            assert v2(a)["data"] == [{"op": "replace", "path": "/cards/1/text", "value": "C!"}]
        assert [c["text"] for c in cards.cards] == ["b", "C!"]


def test_a_write_from_another_epoch_applies_by_position() -> None:
    cards = Cards()
    app = shared_board_app(cards)  # type: ignore[arg-type]
    with TestClient(app) as tc, tc.websocket_connect("/ws?ws_sync=2") as a:
        opened(a)
        del cards.cards[0]
        cards.sync.flush()
        v2(a)
        edit = [{"op": "replace", "path": "/cards/0/text", "value": "X"}]
        versioned(a, "_PATCH:CARDS", edit, {"epoch": "other"}, 0, "e")
        assert v2(a)["data"] == edit
        assert cards.cards[0]["text"] == "X"


def test_a_write_too_far_behind_to_transform_cheaply_is_refused_and_changes_nothing() -> None:
    cards = Cards()
    app = shared_board_app(cards)  # type: ignore[arg-type]
    cards.cards.extend({"text": "x", "votes": 0} for _ in range(300))
    cards.sync.flush()
    with TestClient(app) as tc, tc.websocket_connect("/ws?ws_sync=2") as a:
        base = opened(a)
        for _ in range(200):  # 200 commits of 6 inserts each: 1,200 committed ops
            for _ in range(6):
                cards.cards.insert(0, {"text": "n", "votes": 0})
            cards.sync.flush()
            assert len(v2(a)["data"]) == 6
        before = [dict(c) for c in cards.cards]
        edit = [{"op": "replace", "path": "/cards/2/votes", "value": k} for k in range(90)]
        versioned(a, "_PATCH:CARDS", edit, base, 0, "far")  # 90 x 1,200 op pairs
        error = v2(a)
        assert error["type"] == "_ERROR" and error["data"]["id"] == "far"
        assert "too far behind" in error["data"]["message"]
        assert v2(a)["type"] == "_SET:CARDS"
        assert cards.cards == before


def test_a_write_sent_again_after_its_commit_left_the_history_is_acknowledged_by_set() -> None:
    board = Board()
    board.sync.log = CommitLog(max_commits=2)
    app = shared_board_app(board)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            state = opened(ws)
            add = [{"op": "add", "path": "/cards/0", "value": "w"}]
            write(ws, "_PATCH:BOARD", add, state["v"], "x-1")
            assert v2(ws)["ack"] == "x-1"  # the ack this client will not get
            for i in range(3):  # commits enough to push it out of the history
                send(ws, "_ACTION:BOARD", {"type": "ADD", "text": str(i)})
                v2(ws)
        with tc.websocket_connect("/ws?ws_sync=2") as ws:
            hello(ws, {"BOARD": {"epoch": state["epoch"], "v": state["v"]}})
            assert v2(ws)["type"] == "_HELLO"
            resumed = v2(ws)
            assert resumed["type"] == "_SET:BOARD"
            write(ws, "_PATCH:BOARD", add, resumed["v"], "x-1")
            answer = v2(ws)
    assert answer["type"] == "_SET:BOARD" and answer["ack"] == "x-1"
    assert answer["data"]["cards"] == board.cards == ["w", "0", "1", "2"]
