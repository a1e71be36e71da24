"""Fuzzing a real uvicorn server: no frame stalls it, nothing non-JSON leaves
it, and an honest client loses nothing.

One campaign per run: several clients at once send grammar-made frames
(`fuzz_grammar.py`), honest and hostile, to `fuzz_app.py` in its own process
for ``WS_SYNC_FUZZ_SECONDS`` (default 45) with seed ``WS_SYNC_FUZZ_SEED``
(default fixed: the same frames every run, in the same order per client).
Meanwhile probes provoke each documented close. Each test below checks one
invariant over the whole campaign; a failure lists example batches that
reproduce it. The campaign's summary (worst loop lag included) is written to
``WS_SYNC_FUZZ_REPORT`` (default: ``ws-sync-fuzz.json`` in the temp dir),
where `python -m benchmarks` finds it.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

import pytest
from fuzz_client import Campaign, ServerProcess, check_objects, run_campaign

SECONDS = float(os.environ.get("WS_SYNC_FUZZ_SECONDS", "45"))
SEED = int(os.environ.get("WS_SYNC_FUZZ_SEED", "20261129"))
CLIENTS = 5
MAX_LAG = 1.0
REPORT = Path(
    os.environ.get("WS_SYNC_FUZZ_REPORT", Path(tempfile.gettempdir()) / "ws-sync-fuzz.json")
)


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    with ServerProcess(SECONDS + 60) as server:
        done = asyncio.run(
            asyncio.wait_for(run_campaign(server, SEED, SECONDS, CLIENTS), SECONDS + 45)
        )
    summary = done.summary()
    REPORT.write_text(json.dumps(summary, indent=1))
    lag = summary["lag"]
    print(
        f"\nfuzz: {summary['units']} units, {summary['frames_sent']} frames in {done.wall:.0f} s; "
        f"worst loop lag {lag.get('worst', 0) * 1e3:.1f} ms "
        f"(p99 {lag.get('p99', 0) * 1e3:.1f} ms); "
        f"findings {summary['findings']}; report {REPORT}"
    )
    return done


def _show(examples: dict[str, list[str]]) -> str:
    return "\n\n".join(f"[{k}]\n" + "\n--\n".join(v) for k, v in examples.items())


def test_the_server_loop_never_stalls(campaign: Campaign) -> None:
    lag = campaign.server["lag"]
    assert lag["samples"] > SECONDS * 5  # the monitor ran all along
    assert lag["worst"] < MAX_LAG, lag
    assert not campaign.findings.counts["stall"], _show(campaign.findings.of("stall"))


def test_every_frame_the_server_sends_is_strict_json(campaign: Campaign) -> None:
    assert not campaign.findings.counts["json"], _show(campaign.findings.of("json", "binary"))
    assert not campaign.findings.counts["binary"], _show(campaign.findings.of("binary"))


def test_the_state_is_what_the_honest_frames_alone_make(campaign: Campaign) -> None:
    assert all(r.ended_open for r in campaign.reports)
    finals = [r for r in campaign.reports if r.model_state is not None]
    assert finals and all(r.units["_PATCH"] and r.units["_SET"] for r in finals)
    assert not campaign.findings.counts["state"], _show(campaign.findings.of("state"))
    mismatches = list(check_objects(campaign))
    assert not mismatches, "\n".join(mismatches)


def test_every_action_with_a_readable_id_gets_exactly_one_result(campaign: Campaign) -> None:
    assert not campaign.findings.counts["result"], _show(campaign.findings.of("result"))


def test_every_refused_frame_gets_one_error_carrying_its_id(campaign: Campaign) -> None:
    assert not campaign.findings.counts["errors"], _show(campaign.findings.of("errors"))
    assert not campaign.findings.counts["error id"], _show(campaign.findings.of("error id"))


def test_client_input_is_never_reported_as_an_internal_error(campaign: Campaign) -> None:
    assert not campaign.findings.counts["ref"], _show(campaign.findings.of("ref"))
    logged = campaign.server["logged"]
    unhandled = [r["exception"] for r in logged if "error while handling" in r["message"]]
    assert not unhandled, unhandled[:5]


def test_connections_close_only_by_documented_policy(campaign: Campaign) -> None:
    assert not campaign.findings.counts["close"], _show(campaign.findings.of("close"))
    assert all(r.ended_open for r in campaign.reports)
    got = {p.name: (p.expected, p.got) for p in campaign.probes}
    assert all(expected == code for expected, code in got.values()), got
    assert len(got) == 4


def test_the_campaign_covered_the_grammar(campaign: Campaign) -> None:
    units = campaign.units()
    assert sum(units.values()) >= 200 * min(SECONDS, 45) / 45
    for kind in ("action INC", "_PATCH", "refused _PATCH", "mutated", "binary upload"):
        assert units[kind], kind
    assert campaign.server["pings"] > 0
