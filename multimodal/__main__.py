import sys

from multimodal.cli import main

sys.exit(main())
