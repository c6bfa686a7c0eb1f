"""API keys kept out of URLs and logs; client addresses behind trusted proxies."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import pytest
import websockets

from bench.live import ServiceProcess
from tests.live import make_server

KEY = "S3CRET-key_42"


def _key_protocol(key: str) -> str:
    return "okpose.key." + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


async def _hello_or_status(url: str, **kw) -> str | int:
    """'hello' when admitted, else the HTTP status of the refusal."""
    try:
        async with websockets.connect(url, max_size=None, **kw) as ws:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            return f"{msg['type']}:{ws.subprotocol}"
    except websockets.exceptions.InvalidStatus as e:
        return e.response.status_code


def test_api_key_in_subprotocol_and_never_in_logs():
    """The browser way (key in Sec-WebSocket-Protocol) works; the deprecated ?api_key= still works but
    the access log shows it redacted; the key appears in no log line."""
    svc = ServiceProcess(POSE_API_KEY=KEY).start()
    try:

        async def run():
            return [
                await _hello_or_status(svc.ws, subprotocols=["okpose", _key_protocol(KEY)]),
                await _hello_or_status(svc.ws, subprotocols=["okpose", _key_protocol("wrong")]),
                await _hello_or_status(f"{svc.ws}?api_key={KEY}"),
                await _hello_or_status(svc.ws, additional_headers={"X-API-Key": KEY}),
            ]

        results = asyncio.run(run())
        httpx.get(f"{svc.http}/ready?api_key={KEY}")
    finally:
        svc.stop()
    assert results == ["hello:okpose", 401, "hello:None", "hello:None"]
    log = Path(svc.log.name).read_text()
    assert "api_key=***" in log  # the request was logged ...
    assert KEY not in log  # ... without the key


def _ws_status(url: str, forwarded_for: str) -> str | int:
    return asyncio.run(_hello_or_status(url, additional_headers={"X-Forwarded-For": forwarded_for}))


async def _hold(url: str, forwarded_for: str, then):
    async with websockets.connect(url, max_size=None, additional_headers={"X-Forwarded-For": forwarded_for}) as ws:
        await ws.recv()
        return await then()


@pytest.mark.parametrize("trusted", [True, False])
def test_per_client_limits_count_the_forwarded_client_only_from_trusted_proxies(trusted):
    """One stream per client. Behind a trusted proxy (here the loopback address) two users with
    different X-Forwarded-For each get theirs and a second stream of one of them is refused; from an
    untrusted peer the header is ignored, so the second user counts as the same client."""
    with make_server(max_streams_per_client=1, trusted_proxies="127.0.0.1" if trusted else "") as s:

        async def second_users():
            return [
                await _hello_or_status(s.ws, additional_headers={"X-Forwarded-For": ip})
                for ip in ("10.0.0.2", "10.0.0.1")
            ]

        other, same = asyncio.run(_hold(s.ws, "10.0.0.1", second_users))
    if trusted:
        assert other == "hello:None" and same == 429
    else:
        assert other == 429 and same == 429
