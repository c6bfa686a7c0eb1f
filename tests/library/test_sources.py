"""okpose.sources on real media: the lab clip as a file, as JPEG files (folder, glob), over a real RTSP server
and an HTTP MJPEG server; bad sources fail fast with their name in the message."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from okpose.sources import SourceError, open_source
from tests.library.media import N_FRAMES, psnr


def test_video_file_frames_are_the_clip_with_its_timestamps(clip: Path, clip_frames: list[np.ndarray]) -> None:
    with open_source(clip, max_frames=N_FRAMES) as src:
        assert src.kind == "file" and src.fps and src.frame_count and src.frame_count >= N_FRAMES
        frames = list(src.frames())
    assert len(frames) == N_FRAMES
    assert all(np.array_equal(f.image, ref) for f, ref in zip(frames, clip_frames, strict=True))
    assert [f.index for f in frames] == list(range(N_FRAMES))
    dt = np.diff([f.time_s for f in frames])
    assert np.allclose(dt, 1 / src.fps, rtol=0.05), "frame times follow the video's clock"


def test_every_and_max_frames(clip: Path, clip_frames: list[np.ndarray]) -> None:
    frames = list(open_source(clip, every=3, max_frames=5).frames())
    assert [f.index for f in frames] == [0, 3, 6, 9, 12]
    assert np.array_equal(frames[2].image, clip_frames[6])


def test_folder_and_glob_in_natural_order(tmp_path: Path, clip_frames: list[np.ndarray]) -> None:
    for i in (10, 2, 1):  # 1, 2, 10: natural order, not 1, 10, 2
        cv2.imwrite(str(tmp_path / f"shot{i}.png"), clip_frames[i])
    (tmp_path / "notes.txt").write_text("not an image")
    names = [f.name for f in open_source(tmp_path).frames()]
    assert names == ["shot1.png", "shot2.png", "shot10.png"]
    frames = list(open_source(str(tmp_path / "shot*.png")).frames())
    assert [f.name for f in frames] == names
    assert np.array_equal(frames[2].image, clip_frames[10])  # PNG: lossless


def test_iterables_and_single_images(clip_frames: list[np.ndarray], tmp_path: Path) -> None:
    gray = cv2.cvtColor(clip_frames[0], cv2.COLOR_BGR2GRAY)
    out = list(open_source([clip_frames[0], gray]))
    assert out[0] is clip_frames[0] and out[1].shape == clip_frames[0].shape  # grey becomes BGR
    path = tmp_path / "one.jpg"
    cv2.imwrite(str(path), clip_frames[0])
    assert len(list(open_source(path))) == 1
    with pytest.raises(SourceError, match="item 1"):
        list(open_source([clip_frames[0], np.zeros((4, 4, 3), np.float32)]))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/no/such/clip.mp4", "no such file"),
        ("/no/such/*.jpg", "matches no files"),
        (3.5, "not a source"),
        (63, "webcam 63: could not be opened"),  # no such camera: an error at open, not an empty stream
        ("63", "webcam 63: could not be opened"),
    ],
)
def test_bad_sources_name_themselves(source: object, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(source)


def test_unreadable_files_are_errors_not_skips(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match="broken.jpg"):
        list(open_source(tmp_path))
    (tmp_path / "broken.jpg").unlink()
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match="clip.mp4"):
        open_source(tmp_path / "clip.mp4")


def _raises_within(fn, seconds: float) -> BaseException | None:  # noqa: ANN001
    """Runs ``fn`` in a thread; the exception it raised, failing the test if it is still running after ``seconds``."""
    caught: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            caught.append(None)
        except BaseException as e:  # noqa: BLE001
            caught.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert caught, f"still running after {seconds} s: a bad URL must not hang"
    return caught[0]


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_bad_url_is_a_clear_error_not_a_hang(scheme: str) -> None:
    from tests.library.media import free_port

    url = f"{scheme}://user:secret@127.0.0.1:{free_port()}/nothing"
    err = _raises_within(lambda: open_source(url, timeout_s=2), 20)
    assert isinstance(err, SourceError)
    assert "127.0.0.1" in str(err) and "secret" not in str(err), "names the URL, hides the password"


def test_rtsp_stream_delivers_the_clip(rtsp_url: str, clip_frames: list[np.ndarray]) -> None:
    with open_source(rtsp_url, max_frames=N_FRAMES, reconnect=0) as src:
        assert src.kind == "stream"
        frames = list(src.frames())
    assert len(frames) == N_FRAMES
    # RTP/JPEG re-encodes: the same pictures, in order (each frame closest to its own original)
    for i, f in enumerate(frames):
        scores = [psnr(f.image, ref) for ref in clip_frames]
        assert int(np.argmax(scores)) == i and scores[i] > 30, (i, scores[i])
    assert all(b >= a for a, b in zip([f.time_s for f in frames], [f.time_s for f in frames[1:]], strict=False))


def test_rtsp_reconnects_when_the_stream_ends(rtsp_url: str) -> None:
    # the server's clip is N_FRAMES long: reading more means the source reopened it (with back-off)
    with open_source(rtsp_url, max_frames=2 * N_FRAMES + 5, reconnect=3, backoff_s=0.1) as src:
        frames = list(src.frames())
        assert src.reconnects >= 2
    assert len(frames) == 2 * N_FRAMES + 5
    assert [f.index for f in frames] == list(range(len(frames)))


def test_rtsp_unknown_path_fails_at_open(rtsp_url: str) -> None:
    # a path the server does not serve: a clear error at once (opening is not retried; reading is)
    err = _raises_within(lambda: open_source(rtsp_url.replace("/clip", "/missing"), timeout_s=2), 20)
    assert isinstance(err, SourceError) and "missing" in str(err)


def test_latest_frame_wins_for_a_slow_consumer(rtsp_url: str) -> None:
    got = []
    with open_source(rtsp_url, latest=True, reconnect=0) as src:
        for f in src.frames():
            got.append(f.index)
            time.sleep(0.2)  # 5 frames/s against a 25 frames/s stream
        dropped = src.dropped
    assert dropped > 0 and len(got) + dropped == N_FRAMES
    assert got == sorted(got) and np.diff(got).max() > 1, "skips ahead to the newest frame"


def test_http_mjpeg_stream(mjpeg_url: str, clip_frames: list[np.ndarray]) -> None:
    frames = list(open_source(mjpeg_url, reconnect=0).frames())
    assert len(frames) == N_FRAMES
    assert psnr(frames[5].image, clip_frames[5]) > 30


def test_gif_is_read_as_a_video(data_root: Path) -> None:
    """An animated GIF (people-diverse's previews) is a video: every frame, in order, on the GIF's clock."""
    gif = sorted((data_root.parent / "people-diverse" / "intel-sample-videos" / "preview").glob("*.gif"))[0]
    cap = cv2.VideoCapture(str(gif))
    ref = []
    while (got := cap.read())[0]:
        ref.append(got[1])
    cap.release()
    with open_source(gif) as src:
        assert src.kind == "file"
        frames = list(src.frames())
    assert len(frames) == len(ref) > 10
    assert all(np.array_equal(f.image, r) for f, r in zip(frames, ref, strict=True))
    assert np.all(np.diff([f.time_s for f in frames]) > 0)
    folder = list(open_source(gif.parent).frames())  # a folder of GIFs: each one's frames, none skipped
    assert len(folder) > len(ref) and {f.name for f in folder} >= {gif.name}
