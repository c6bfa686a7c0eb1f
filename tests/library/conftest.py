"""Fixtures of the library tests (``tests.library.media``: the clip, its frames, RTSP and MJPEG servers)."""

from tests.library.media import clip, clip_frames, frames_dir, mjpeg_url, pipe, rtsp_url  # noqa: F401
