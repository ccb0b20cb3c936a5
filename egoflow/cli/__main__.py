"""`python -m egoflow.cli` = `egoflow`."""
import sys

from egoflow.cli import main

sys.exit(main())
