"""``python -m hfgcot.cli``: the ``hfgcot`` command."""

import sys

from hfgcot.cli import main

sys.exit(main())
