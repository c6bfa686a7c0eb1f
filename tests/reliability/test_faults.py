"""Faults: disconnects, half-open sockets, slow consumers, per-frame exceptions, SIGTERM, restarts, limits."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time

import httpx
import pytest
import websockets

from bench.live import ServiceProcess
from clients.streaming import Sink, run
from okpose.core.topdown import TopDown
from okpose.pose import load_pose_model
from service.engine import Engine
from tests.live import make_server, settings_for_tests
from tests.reliability.summary import report


async def _hello(ws):
    assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "hello"


async def _until_closed(ws) -> tuple[list[dict], int | None]:
    """Every message until the server closes the connection, and its close code."""
    msgs = []
    try:
        while True:
            msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    except websockets.exceptions.ConnectionClosed as e:
        return msgs, e.rcvd.code if e.rcvd else None


def _metric(text: str, prefix: str) -> float:
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(prefix))


def test_client_disconnects_mid_frame_and_half_open_sockets(server, multi_frames):
    async def rude():
        for _ in range(5):
            ws = await websockets.connect(server.ws, max_size=None)
            await _hello(ws)
            await ws.send(multi_frames[0])
            ws.transport.abort()  # gone mid-frame, no close handshake

    asyncio.run(rude())
    # half-open / never-finished HTTP connections must not block anyone else
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        socks.append(s)
    try:
        assert httpx.get(f"{server.http}/health", timeout=5).status_code == 200

        async def normal():
            async with websockets.connect(server.ws, max_size=None) as ws:
                await _hello(ws)
                await ws.send(multi_frames[1])
                return json.loads(await asyncio.wait_for(ws.recv(), 30))

        assert asyncio.run(normal())["type"] == "result"
    finally:
        for s in socks:
            s.close()
    deadline = time.time() + 10
    while server.app.state.engine.limiter.total and time.time() < deadline:
        time.sleep(0.1)
    assert server.app.state.engine.limiter.total == 0  # every aborted stream was released
    report("disconnects + half-open", aborted_streams=5, half_open_sockets=20, survived=True)


def test_slow_consumer_is_bounded_then_cut_off(multi_frames):
    """A client that sends and never reads: frames are dropped (one pending at most), not queued; once
    its socket stops draining the server gives up after send_timeout_s (metric + close 1008, which the
    client sees after the backlog). Socket buffers are shrunk on both ends (as over a slow link), so
    the backlog fills in seconds rather than after the kernel's 4 MB of loopback buffering."""
    import socket

    server = make_server(send_timeout_s=1.0)
    server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)  # accepted sockets inherit it
    with server as s:

        async def flood_then_read():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            sock.connect(("127.0.0.1", s.port))
            ws = await websockets.connect(s.ws, sock=sock, max_size=None, max_queue=1)
            registry = s.engine.metrics.registry

            def cut_offs() -> float:
                return registry.get_sample_value("pose_errors_total", {"kind": "slow_consumer"}) or 0.0

            sent, t0 = 0, time.monotonic()
            while not cut_offs() and time.monotonic() - t0 < 60:
                await ws.send(multi_frames[sent % len(multi_frames)])
                sent += 1
                await asyncio.sleep(1 / 60)
            text = (await asyncio.to_thread(httpx.get, f"{s.http}/metrics")).text
            backlog, code = await _until_closed(ws)  # now read: the backlog, then the server's close
            return sent, text, len(backlog), code

        sent, text, backlog, code = asyncio.run(flood_then_read())
        processed = _metric(text, 'pose_frames_total{outcome="processed",source="stream"}')
        dropped = _metric(text, 'pose_frames_total{outcome="dropped",source="stream"}')
        cut_off = _metric(text, 'pose_errors_total{kind="slow_consumer"}')
        assert cut_off == 1 and code == 1008  # cut off after send_timeout_s, with a policy close
        assert dropped > 0 and processed + dropped >= sent - 2  # stale frames dropped, not queued
        assert httpx.get(f"{s.http}/health").status_code == 200
        deadline = time.time() + 5
        while s.engine.limiter.total and time.time() < deadline:
            time.sleep(0.05)
        assert s.engine.limiter.total == 0
    report(
        "slow consumer",
        frames_sent=sent,
        processed=int(processed),
        dropped=int(dropped),
        backlog_read=backlog,
        close_code=code,
    )


class FlakyPose(TopDown):
    """The real pose model, failing on one chosen call of its network (or slowed down)."""

    def __init__(self, base: TopDown, fail_on: int = 0, delay_s: float = 0.0):
        super().__init__(base.predict, base.spec, base.flip_test)
        self.providers, self.fail_on, self.delay_s, self.calls = base.providers, fail_on, delay_s, 0

    def infer(self, x, prior_maps=None):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("injected pose failure")
        time.sleep(self.delay_s)
        return super().infer(x, prior_maps)


def _engine_with(pose_wrapper, **overrides):
    settings = settings_for_tests(**overrides)
    base = load_pose_model(settings.pose_model, settings.providers, settings.threads)
    return Engine.load(settings, pose=pose_wrapper(base)), overrides


def test_exception_on_one_frame_is_reported_and_stream_continues(multi_frames):
    engine, overrides = _engine_with(lambda base: FlakyPose(base, fail_on=3))  # warm-up is call 1
    with make_server(engine, **overrides) as server:

        async def run3():
            out = []
            async with websockets.connect(server.ws, max_size=None) as ws:
                await _hello(ws)
                await ws.send(json.dumps({"type": "config", "detect_interval": 1}))
                await ws.recv()
                for f in multi_frames[:3]:
                    await ws.send(f)
                    out.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            return out

        msgs = asyncio.run(run3())
        after = _metric(httpx.get(f"{server.http}/metrics").text, 'pose_errors_total{kind="frame"}')
    assert [m["type"] for m in msgs] == ["result", "error", "result"]
    assert msgs[1]["frame"] == 1 and "RuntimeError" in msgs[1]["error"]
    assert after == 1
    report("exception on one frame", error_frame=1, stream_continued=True)


def test_drain_answers_the_in_flight_frame_then_closes_1001(multi_frames):
    """The production server class, a pose stage slowed to 0.5 s so the frame is surely in flight
    when the shutdown signal arrives."""
    engine, overrides = _engine_with(lambda base: FlakyPose(base, delay_s=0.5))
    with make_server(engine, **overrides) as s:

        async def run_():
            async with websockets.connect(s.ws, max_size=None) as ws:
                await _hello(ws)
                await ws.send(json.dumps({"type": "config", "detect_interval": 1}))
                await ws.recv()
                await ws.send(multi_frames[0])
                await asyncio.sleep(0.2)  # frame 0 is inside the slow pose stage now
                s.server.request_shutdown()  # what SIGTERM does, delivered to the server's loop
                await asyncio.sleep(0.05)
                ready = await asyncio.to_thread(httpx.get, f"{s.http}/ready")  # routing stops first
                return await _until_closed(ws), ready

        (msgs, code), ready = asyncio.run(run_())
    assert ready.status_code == 503 and "draining" in ready.json()["detail"]
    assert msgs[0]["type"] == "result" and msgs[0]["frame"] == 0  # in-flight frame answered
    assert msgs[-1]["type"] == "bye" and code == 1001
    report("drain on shutdown", in_flight_answered=True, close_code=code)


def test_sigterm_process_loses_no_frame_and_exits_cleanly(multi_frames):
    svc = ServiceProcess().start()

    async def stream_then_term():
        async with websockets.connect(svc.ws, max_size=None) as ws:
            await _hello(ws)
            await ws.send(multi_frames[0])
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            await ws.send(multi_frames[1])
            svc.proc.send_signal(signal.SIGTERM)
            msgs, code = await _until_closed(ws)
            return [first, *msgs], code

    msgs, code = asyncio.run(stream_then_term())
    rc = svc.proc.wait(timeout=30)  # no second signal: that one would mean "exit now"
    answered = {m["frame"] for m in msgs if m["type"] in ("result", "error") and "frame" in m}
    assert answered == {0, 1}  # frame 1 raced the signal: answered or refused, never lost
    assert msgs[-1]["type"] == "bye"
    assert code == 1001 and rc == 0
    report("SIGTERM (process)", frames_lost=0, close_code=code, exit_code=rc)


def test_bundled_client_reconnects_after_server_restart(data_root, tmp_path):
    svc = ServiceProcess().start()
    frames_src = _frames(data_root, 150)
    sink = Sink(None, str(tmp_path / "out.jsonl"), 30, show=False)
    result = {}

    def client():
        result["stats"] = asyncio.run(run(svc.http, iter(frames_src), sink, "live", 30.0, reconnect=True))

    t = threading.Thread(target=client)
    t.start()
    time.sleep(1.5)
    svc.stop()  # server goes away mid-stream ...
    time.sleep(0.5)
    svc.start()  # ... and comes back on the same port
    t.join(timeout=120)
    sink.close()
    svc.stop()
    stats = result["stats"]
    assert stats.reconnects >= 1
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    bye = [m for m in lines if m.get("type") == "bye"]
    results = [m for m in lines if m.get("type") == "result"]
    assert results and stats.answered == len(results)
    assert bye, "the restart was announced to the client"
    report("server restart", reconnects=stats.reconnects, answered=stats.answered)


def _frames(data_root, n):
    import cv2

    cap = cv2.VideoCapture(str(data_root / "videos" / "pose2sim_multi_cam01.mp4"))
    out = []
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        out.append(cv2.resize(img, (270, 480)))
    return out


def test_limits_streams_per_client_and_concurrent_requests(multi_frames):
    with make_server(max_streams_per_client=1, max_requests_per_client=1) as s:

        async def two_streams():
            async with websockets.connect(s.ws) as ws1:
                await _hello(ws1)
                with pytest.raises(websockets.exceptions.InvalidStatus) as e:
                    async with websockets.connect(s.ws):
                        pass
                return e.value.response

        resp = asyncio.run(two_streams())
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "5"

        async def burst():
            async with httpx.AsyncClient(timeout=60) as c:
                return await asyncio.gather(
                    *[
                        c.post(f"{s.http}/pose", content=multi_frames[0], headers={"content-type": "image/jpeg"})
                        for _ in range(6)
                    ]
                )

        codes = [r.status_code for r in asyncio.run(burst())]
        assert 200 in codes and 429 in codes and set(codes) <= {200, 429}
        r429 = next(r for r in asyncio.run(burst()) if r.status_code == 429)
        assert r429.headers["retry-after"] == "1"
    report("limits", stream_429=True, rest_429=codes.count(429))


def test_origin_allow_list_for_browser_and_websocket(multi_frames):
    with make_server(allowed_origins="http://good.example") as s:
        pre = httpx.options(
            f"{s.http}/pose", headers={"Origin": "http://good.example", "Access-Control-Request-Method": "POST"}
        )
        assert pre.headers.get("access-control-allow-origin") == "http://good.example"
        bad = httpx.options(
            f"{s.http}/pose", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in bad.headers

        async def ws(origin):
            async with websockets.connect(s.ws, origin=origin) as c:
                return json.loads(await c.recv())["type"]

        assert asyncio.run(ws("http://good.example")) == "hello"
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            asyncio.run(ws("http://evil.example"))
        assert e.value.response.status_code == 403
