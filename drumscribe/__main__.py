"""`python -m drumscribe ...` is the `drumscribe` command."""
import sys

from .cli import main

sys.exit(main())
