"""python -m service [--host H] [--port P] — flags override POSE_* environment settings."""

from __future__ import annotations

import argparse
import logging
import sys

from okpose.core.runtime import ModelLoadError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service", description="okpose: pose estimation and tracking service")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--pose-model", help="student ONNX (default: the embedded model)")
    p.add_argument("--detector-model", help="detector ONNX (NanoDet spec or YOLO export) or .pt (detect extra)")
    args = p.parse_args(argv)

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
    from service.server import GracefulServer, uvicorn_config

    GracefulServer(uvicorn_config(create_app(settings, engine), settings), engine, settings.shutdown_grace_s).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
