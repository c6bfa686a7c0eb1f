from tests.service.conftest import server  # noqa: F401  (shared live-server fixture)
