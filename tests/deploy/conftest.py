from tests.service.conftest import server, val_image  # noqa: F401  (shared live-server fixtures)
