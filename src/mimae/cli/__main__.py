import sys

from mimae.cli import main

sys.exit(main())
