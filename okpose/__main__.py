"""python -m okpose: the ``okpose`` command (``okpose.cli``)."""

import sys

from okpose.cli import main

sys.exit(main())
