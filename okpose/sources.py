"""One frame reader for every source: video files, image files, folders, globs, webcams, RTSP and HTTP(S)
streams (MJPEG or anything FFmpeg reads), and iterables of images.

    with open_source("rtsp://cam/1", latest=True) as src:   # or "clip.mp4", "frames/", "shots/*.jpg", 0, [img, ...]
        for frame in src.frames():                          # Frame(image BGR uint8, index, time_s, name)
            ...

Network sources reconnect with exponential back-off (``reconnect`` tries in a row, then ``SourceError``);
``latest=True`` reads a live source in a background thread and always hands out the newest frame (the
frames skipped meanwhile are counted in ``Source.dropped``), so a slow consumer never falls behind a
camera. Open and read calls on network sources time out (``timeout_s``): a bad URL is a ``SourceError``
naming it, never a hang. ``Frame.time_s`` is the source's own clock (the video's timestamps; for live
sources the arrival time), so that tracking a file does not depend on how busy the machine is.
"""

from __future__ import annotations

import glob as globlib
import itertools
import logging
import re
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

log = logging.getLogger("okpose.sources")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif"}
)
NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
Image = npt.NDArray[Any]  # BGR uint8 (H, W, 3) as OpenCV returns it


class SourceError(RuntimeError):
    """A source that cannot be opened or read any more; the message names it and says why."""


@dataclass(frozen=True)
class Frame:
    image: Image  # BGR uint8 (H, W, 3)
    index: int  # 0-based position in the source (counts frames skipped by ``latest``/``every``)
    time_s: float  # the source's clock: video timestamp, or seconds since the source opened (live)
    name: str = ""  # the image file a frame came from (folders, globs)


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def media_files(folder: str | Path) -> list[Path]:
    """The images and videos directly in ``folder``, in natural order (frame2 before frame10): what a folder
    source reads. ``SourceError`` if there are none."""
    path = Path(folder).expanduser()
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES),
                   key=_natural_key)  # fmt: skip
    if not files:
        raise SourceError(f"{path}: folder has no images or videos")
    return files


def _redact(url: str) -> str:
    """A URL with its password hidden, for messages and logs."""
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", url)


def _as_image(image: Any, what: str) -> Image:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        got = getattr(image, "shape", type(image).__name__)
        raise SourceError(f"{what}: expected a uint8 image (H, W, 3), got {got}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] != 3:
        raise SourceError(f"{what}: expected 3 colour channels, got {image.shape[2]}")
    return image


class Source:
    """An opened source. Iterate ``frames()`` (or the Source itself for bare images); close it when done
    (a context manager). ``kind``: file | image | images | webcam | stream | iterable."""

    def __init__(
        self,
        source: Any,
        *,
        every: int = 1,
        max_frames: int = 0,
        reconnect: int = 5,
        backoff_s: float = 0.5,
        latest: bool = False,
        timeout_s: float = 10.0,
    ):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if max_frames < 0 or reconnect < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ValueError("max_frames, reconnect and backoff_s must be >= 0 and timeout_s > 0")
        self.every, self.max_frames, self.reconnect = every, max_frames, reconnect
        self.backoff_s, self.latest, self.timeout_s = backoff_s, latest, timeout_s
        self.dropped = 0  # live frames replaced by a newer one before they were read (``latest``)
        self.reconnects = 0
        self.fps: float | None = None
        self.frame_count: int | None = None  # known for files, image lists and sized iterables
        self._cap: cv2.VideoCapture | None = None
        self._files: list[Path] = []
        self._iterable: Iterable[Any] | None = None
        self._closed = threading.Event()
        self._reader: threading.Thread | None = None
        self.kind, self.name = self._classify(source)

    # -- what the source is ------------------------------------------------------------------------------------
    def _classify(self, source: Any) -> tuple[str, str]:
        if isinstance(source, bool):
            raise SourceError(f"not a source: {source!r}")
        if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
            index = int(source)
            self._cap = self._open_capture(index, f"webcam {index}")
            return "webcam", f"webcam {index}"
        if isinstance(source, str) and source.lower().startswith(NETWORK_SCHEMES):
            self._url = source
            self._cap = self._open_network()
            return "stream", _redact(source)
        if isinstance(source, str | Path):
            path = Path(source).expanduser()
            text = str(source)
            if path.is_dir():
                return self._file_list(media_files(path)), str(path)
            if any(c in text for c in "*?["):
                files = sorted((Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file()),
                               key=lambda p: (str(p.parent), _natural_key(p)))  # fmt: skip
                if not files:
                    raise SourceError(f"{text}: the pattern matches no files")
                return self._file_list(files), text
            if not path.exists():
                raise SourceError(f"{path}: no such file or folder (nor a webcam index or a stream URL)")
            if path.suffix.lower() in IMAGE_SUFFIXES:
                self._files = [path]
                self.frame_count = 1
                return "image", str(path)
            self._cap = self._open_capture(str(path), str(path))
            self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
            return "file", str(path)
        if isinstance(source, np.ndarray):
            self._iterable = [source]
            self.frame_count = 1
            return "iterable", "image"
        if isinstance(source, Iterable):
            self._iterable = source
            self.frame_count = len(source) if hasattr(source, "__len__") else None  # type: ignore[arg-type]
            return "iterable", type(source).__name__
        raise SourceError(f"not a source: {type(source).__name__} (a path, glob, webcam index, URL or images)")

    def _file_list(self, files: list[Path]) -> str:
        self._files = files
        if all(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
            self.frame_count = len(files)
        return "images"

    def _open_capture(self, target: int | str, what: str, params: list[int] | None = None) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(target, cv2.CAP_ANY if params is None else cv2.CAP_FFMPEG, params or [])
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{what}: could not be opened (not a readable video or camera)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        return cap

    def _open_network(self) -> cv2.VideoCapture:
        ms = int(self.timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        return self._open_capture(self._url, _redact(self._url), params)

    # -- reading -------------------------------------------------------------------------------------------------
    def _raw(self) -> Iterator[Frame]:
        """Every frame of the source, in order, with its index and time."""
        if self.kind in ("image", "images"):
            for path in self._files:
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    yield from self._video_frames(self._open_capture(str(path), str(path)), path.name)
                    continue
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise SourceError(f"{path}: not a readable image")
                yield Frame(image, -1, 0.0, path.name)
        elif self.kind == "iterable":
            assert self._iterable is not None
            for i, image in enumerate(self._iterable):
                yield Frame(_as_image(image, f"item {i} of the {self.name}"), -1, 0.0)
        elif self.kind == "file":
            assert self._cap is not None
            yield from self._video_frames(self._cap, "")
        else:
            yield from self._live()

    def _video_frames(self, cap: cv2.VideoCapture, name: str) -> Iterator[Frame]:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        i = 0
        try:
            while not self._closed.is_set():
                ok, image = cap.read()
                if not ok:
                    return
                ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                t = ms / 1e3 if ms and ms > 0 else (i / fps if fps > 0 else float(i))
                yield Frame(image, -1, t, name)
                i += 1
        finally:
            if cap is not self._cap:
                cap.release()

    def _live(self) -> Iterator[Frame]:
        """A camera or stream, reconnecting with back-off when reads fail."""
        start = time.monotonic()
        failures = 0
        while not self._closed.is_set():
            ok, image = (False, None) if self._cap is None else self._cap.read()
            if ok and image is not None:
                failures = 0
                yield Frame(image, -1, time.monotonic() - start)
                continue
            if self.kind != "stream" or failures >= self.reconnect:
                if self.kind == "stream" and self.reconnect:
                    raise SourceError(f"{self.name}: stream lost, {failures} reconnect attempts failed")
                return  # a webcam unplugged, or reconnect=0: the source ends
            failures += 1
            wait = min(self.backoff_s * 2 ** (failures - 1), 30.0)
            log.warning("%s: no frame, reconnecting in %.1f s (attempt %d of %d)", self.name, wait, failures,
                        self.reconnect)  # fmt: skip
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            if self._closed.wait(wait):
                return
            try:
                self._cap = self._open_network()
                self.reconnects += 1
            except SourceError:
                self._cap = None

    def _newest(self, frames: Iterator[Frame]) -> Generator[Frame, None, None]:
        """Latest frame wins: a reader thread keeps only the newest frame; the consumer takes what is there."""
        cond = threading.Condition()
        slot: list[Frame] = []
        done: list[BaseException | None] = []

        def read() -> None:
            try:
                for f in frames:
                    with cond:
                        if slot:
                            self.dropped += 1
                            slot[0] = f
                        else:
                            slot.append(f)
                        cond.notify()
                    if self._closed.is_set():
                        break
                done.append(None)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                done.append(e)
            with cond:
                cond.notify()

        self._reader = threading.Thread(target=read, name=f"okpose-source {self.name}", daemon=True)
        self._reader.start()  # stopped by close(), which frames() calls when it ends
        while True:
            with cond:
                while not slot and not done:
                    cond.wait(0.5)
                if slot:
                    frame = slot.pop()
                elif done:
                    if done[0] is not None:
                        raise done[0]
                    return
            yield frame

    def frames(self) -> Iterator[Frame]:
        """The frames (every ``every``-th, at most ``max_frames``), each with its index, time and file name."""
        raw = self._raw()
        counted = (Frame(f.image, i, f.time_s if f.time_s or i == 0 else i / (self.fps or 30.0), f.name)
                   for i, f in enumerate(raw))  # fmt: skip
        picked: Generator[Frame, None, None] = (f for f in counted if f.index % self.every == 0)
        if self.latest and self.kind in ("webcam", "stream"):
            picked = self._newest(picked)
        try:
            yield from itertools.islice(picked, self.max_frames or None)
        finally:
            self.close()  # stops a ``latest`` reader thread before the capture is released

    def __iter__(self) -> Iterator[Image]:
        return (f.image for f in self.frames())

    def close(self) -> None:
        self._closed.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=self.timeout_s + 1)  # never release a capture another thread reads
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Source({self.kind}: {self.name})"


def open_source(source: Any, **options: Any) -> Source:
    """``source``: a video or image file, a folder, a glob, a webcam index (int or "0"), an rtsp:// / http(s)://
    URL, a ``Source``, or an iterable of BGR images. ``options``: see ``Source``."""
    if isinstance(source, Source):
        if options:
            raise ValueError("options are given to the Source already opened")
        return source
    return Source(source, **options)
