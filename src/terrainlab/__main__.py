"""``python -m terrainlab`` is the ``terrainlab`` command (see :mod:`terrainlab.cli`)."""

import sys

from terrainlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
