import sys

from sentra_scan.cli import main

sys.exit(main())
