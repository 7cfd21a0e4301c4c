import sys

from wsstar.server.cli import main

sys.exit(main())
