"""``python -m hfgcot.cli``: the ``hfgcot`` command."""

import sys

from hfgcot.cli import main

if __name__ == "__main__":
    sys.exit(main())
