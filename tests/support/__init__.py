"""What the tests share: a real origin (origin.py) and one on raw sockets
(raw_origin.py), raw-socket clients (sockets.py), the shared corpus (corpus.py), the
reference parser (oracle.py) and the tracker oracle (trackers.py)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the project's checkout
