"""``python -m clin_linker.beam_jobs.cli`` = ``clin-linker``."""
import sys

from . import main

sys.exit(main())
