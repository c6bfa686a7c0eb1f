"""Bad input: OpenAPI-driven HTTP fuzzing (schemathesis) and websocket fuzzing (hypothesis)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.live import ServiceProcess
from tests.live import noise_jpeg, png_header_only
from tests.reliability.summary import FULL, report

HTTP_EXAMPLES = 1500 if FULL else 60
WS_EXAMPLES = 2000 if FULL else 150


CHECKS = ",".join(
    (
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
    )
)


@pytest.mark.timeout(1800)
def test_schemathesis_no_server_errors_and_answers_match_the_schema(tmp_path):
    """Every generated request: no 5xx, and the answer conforms to the OpenAPI document (status code
    declared, body matches its schema, content type and headers as documented)."""
    svc = ServiceProcess(POSE_MAX_REQUESTS_PER_CLIENT="64").start()
    try:
        schemathesis = str(Path(sys.executable).parent / "schemathesis")
        r = subprocess.run(
            [
                schemathesis,
                "run",
                f"{svc.http}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                str(HTTP_EXAMPLES),
                "--seed",
                "1",
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert r.returncode == 0, r.stdout[-4000:]
        m = re.search(r"(\d+) generated, (\d+) passed", r.stdout)
        assert m and m.group(1) == m.group(2), r.stdout[-2000:]
        assert httpx.get(f"{svc.http}/health").status_code == 200
        report("HTTP fuzzing (schemathesis)", cases=int(m.group(1)), server_errors=0, schema_violations=0)
    finally:
        assert svc.stop() == 0


JPEG = noise_jpeg(96, 64)
payloads = st.one_of(
    st.binary(min_size=0, max_size=4096),
    st.integers(0, len(JPEG) - 1).map(lambda n: JPEG[:n]),  # truncated JPEGs
    st.tuples(st.integers(1, 70000), st.integers(1, 70000)).map(lambda wh: png_header_only(*wh)),  # bombs
    st.binary(min_size=1, max_size=64).map(lambda b: b"\xff\xd8\xff\xc0" + b),  # broken markers
    st.just(b""),
)


@pytest.mark.timeout(1800)
def test_websocket_fuzzing_every_frame_gets_an_answer(server, multi_frames):
    """Random bytes, truncated JPEGs, PNG headers claiming huge sizes, zero bytes, text where
    binary is expected: every binary frame gets an error (with its id) or a result, text gets an
    error, and a real frame still works afterwards."""
    outcomes = {"error": 0, "result": 0, "text_errors": 0}

    async def session(cases: list[bytes], texts: list[str]):
        async with websockets.connect(server.ws, max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            for i, data in enumerate(cases):
                await ws.send(data)
                m = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert m["type"] in ("error", "result") and m["frame"] == i, m
                outcomes[m["type"]] += 1
            for t in texts:
                await ws.send(t)
                m = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert m["type"] == "error" and "frame" not in m
                outcomes["text_errors"] += 1
            await ws.send(multi_frames[0])
            m = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert m["type"] == "result" and m["frame"] == len(cases)

    @settings(
        max_examples=max(1, WS_EXAMPLES // 10), deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.lists(payloads, min_size=1, max_size=10), st.lists(st.text(max_size=200), max_size=3))
    def run(cases, texts):
        asyncio.run(session(cases, texts))

    run()

    # oversized message (beyond the image limit): an error with the frame id, connection intact
    async def oversized():
        async with websockets.connect(server.ws, max_size=None) as ws:
            await ws.recv()
            await ws.send(b"\xff\xd8" + b"\0" * 3_000_000)
            m = json.loads(await ws.recv())
            assert m["type"] == "error" and m["frame"] == 0
            await ws.send(multi_frames[0])
            assert json.loads(await ws.recv())["type"] == "result"

    asyncio.run(oversized())
    assert httpx.get(f"{server.http}/health").status_code == 200
    total = outcomes["error"] + outcomes["result"] + outcomes["text_errors"]
    report("websocket fuzzing", cases=total, errors_reported=outcomes["error"] + outcomes["text_errors"], unanswered=0)
