from tests.live import multi_frames, server, val_image  # noqa: F401  (shared live-server fixtures)
