"""``python -m api`` runs the ``hil`` command line."""

import sys

from api.cli import main

sys.exit(main())
