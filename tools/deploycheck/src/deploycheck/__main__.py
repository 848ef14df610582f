"""`python -m deploycheck [ROOT]`: runs every check against the repository at ROOT (default .)."""

import sys

from deploycheck.cli import main

sys.exit(main(sys.argv[1:]))
