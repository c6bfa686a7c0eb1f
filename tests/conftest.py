from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, make_server, video_frames

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "realpose-lab"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not DATA.exists():
        pytest.fail(f"real data expected at {DATA} (../shared beside the checkout)")
    return DATA


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    with make_server() as s:
        yield s


@pytest.fixture(scope="session")
def multi_frames(data_root: Path) -> list[bytes]:
    return video_frames(data_root, "pose2sim_multi_cam03", 40)


@pytest.fixture(scope="session")
def val_image(data_root: Path) -> bytes:
    return (data_root / "images" / "val" / "pose2sim_multi_cam03_f0010.jpg").read_bytes()
