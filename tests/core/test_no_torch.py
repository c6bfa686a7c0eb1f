import subprocess
import sys


def test_core_and_service_never_import_torch():
    code = (
        "import sys; import okpose.core.geometry, okpose.core.heatmaps, okpose.core.oks, okpose.core.topdown, okpose.core.spec;"
        "import service.app, service.engine;"
        "bad = [m for m in ('torch', 'torchvision', 'ultralytics') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
