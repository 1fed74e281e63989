"""``python -m crossbar_hil.api`` runs the ``hil`` command line."""

import sys

from crossbar_hil.api.cli import main

sys.exit(main())
