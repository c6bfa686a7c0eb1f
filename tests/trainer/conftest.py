import pytest

torch = pytest.importorskip("torch")  # the trainer suite needs the `train` extra (make test installs it)
