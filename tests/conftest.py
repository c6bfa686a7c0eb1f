from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "realpose-lab"


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not DATA.exists():
        pytest.fail(f"real data expected at {DATA} (../shared beside the checkout)")
    return DATA
