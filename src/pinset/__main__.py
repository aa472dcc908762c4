"""``python -m pinset`` runs the command line."""

import sys

from pinset.cli import main

sys.exit(main())
