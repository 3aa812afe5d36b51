import sys

from drivers.hwctl import main

sys.exit(main())
