"""``python -m ganga_like.cli``: the ``ganga-like`` command."""

import sys

from . import main

sys.exit(main())
