"""Cross-stream micro-batching of the pose network: crops of frames that different worker threads
(different streams, or REST requests) process at about the same time go through one inference call.

A caller hands in its batch of crops; the first caller of a round waits up to ``window_s`` for
others (or until ``max_crops`` are queued), runs the concatenation once, and every caller gets its
own rows back. Off by default: on a CPU the network already uses every core for one frame's crops
and a bigger batch saves little (see ``bench``); on a GPU one call per round instead of one per
frame is what pays.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@dataclass
class _Job:
    inputs: tuple[F32, ...]  # the network's inputs for this caller's crops, each (N, ...)
    done: threading.Event = field(default_factory=threading.Event)
    out: F32 | None = None
    error: BaseException | None = None

    @property
    def n(self) -> int:  # this caller's crops
        return len(self.inputs[0])


class MicroBatcher:
    """``batcher(*inputs) -> infer(*inputs)``, with concurrent calls merged into one ``infer`` call.

    Every input has one row per crop (the crops, and for the video model their previous-pose maps);
    callers of one round are concatenated input by input."""

    def __init__(self, infer: Callable[..., F32], window_s: float, max_crops: int = 64):
        self.infer, self.window_s, self.max_crops = infer, window_s, max_crops
        self._lock = threading.Lock()
        self._queue: list[_Job] = []
        self._leader_busy = False
        self.calls = 0  # inference calls made (for tests and metrics)
        self.batched_frames = 0  # frames that shared a call with another frame

    def __call__(self, *inputs: F32) -> F32:
        n = {len(a) for a in inputs}
        if len(n) != 1:
            raise ValueError(f"inputs differ in their number of crops: {[len(a) for a in inputs]}")
        job = _Job(tuple(np.ascontiguousarray(a) for a in inputs))
        with self._lock:
            self._queue.append(job)
            lead = not self._leader_busy
            if lead:
                self._leader_busy = True
        if not lead:
            job.done.wait()
            if job.error is not None:
                raise job.error
            assert job.out is not None
            return job.out
        # the leader: collect the round, run it, hand out the rows
        deadline = time.perf_counter() + self.window_s
        while time.perf_counter() < deadline:
            with self._lock:
                if sum(j.n for j in self._queue) >= self.max_crops:
                    break
            time.sleep(self.window_s / 10)
        with self._lock:
            jobs, self._queue = self._queue, []
            self._leader_busy = False
        try:
            out = self.infer(*(np.concatenate(parts) for parts in zip(*(j.inputs for j in jobs), strict=True)))
            self.calls += 1
            if len(jobs) > 1:
                self.batched_frames += len(jobs)
            start = 0
            for j in jobs:
                j.out = out[start : start + j.n]
                start += j.n
        except BaseException as e:  # noqa: BLE001 - every waiting caller gets the failure
            for j in jobs:
                j.error = e
        for j in jobs:
            if j is not job:
                j.done.set()
        if job.error is not None:
            raise job.error
        assert job.out is not None
        return job.out
