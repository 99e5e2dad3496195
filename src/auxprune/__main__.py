"""`python -m auxprune` (and `accelerate launch -m auxprune prune ...`): the `auxprune` command."""

import sys

from auxprune.cli import main

sys.exit(main())
