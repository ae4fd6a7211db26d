import sys

from emr_cmk_notebook.cli import main

sys.exit(main())
