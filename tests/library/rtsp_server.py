"""A real RTSP server for the source tests: GStreamer's gst-rtsp-server (Debian gir1.2-gst-rtsp-server-1.0).

Run with the *system* python (PyGObject lives there, not in the venv):
    /usr/bin/python3 tests/sources/rtsp_server.py FRAMES_DIR PORT [FPS]
serves FRAMES_DIR/%05d.jpg once per client at rtsp://127.0.0.1:PORT/clip as RTP/JPEG and prints
"ready" when it listens. A new client (or a reconnect) gets the clip from its first frame.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    frames, port = sys.argv[1], sys.argv[2]
    fps = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( multifilesrc location="{frames}/%05d.jpg" index=0 caps="image/jpeg,framerate={fps}/1" '
        "! jpegdec ! videoconvert ! jpegenc quality=90 ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory("/clip", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"could not listen on port {port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
