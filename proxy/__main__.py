"""``python -m proxy`` is ``consent-proxy``."""

import sys

from proxy.cli import main

sys.exit(main())
