"""python -m service [--host H] [--port P] — flags override POSE_* environment settings."""

from __future__ import annotations

import argparse
import logging
import sys

from service.runtime import ModelLoadError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service", description="okpose: pose estimation and tracking service")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--pose-model", help="student ONNX (default: the embedded model)")
    p.add_argument("--detector-model", help="YOLO ONNX (or .pt with the detect extra)")
    args = p.parse_args(argv)

    import uvicorn
    from pydantic import ValidationError

    from service.app import create_app
    from service.settings import Settings

    overrides = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        print(f"invalid settings: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from service.engine import Engine

    try:  # load before binding the port: a bad model fails fast with the file named, no traceback
        engine = Engine.load(settings)
    except ModelLoadError as e:
        logging.getLogger("service").error("startup failed: %s", e)
        return 1
    from service.server import GracefulServer

    config = uvicorn.Config(
        create_app(settings, engine), host=settings.host, port=settings.port, log_level=settings.log_level,
        ws_per_message_deflate=False, timeout_graceful_shutdown=10, ws_ping_interval=10, ws_ping_timeout=10,
    )  # fmt: skip
    GracefulServer(config, engine).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
