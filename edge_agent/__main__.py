"""``python -m edge_agent --config FILE``: the lean entry for a field device."""

import sys

from edge_agent._main import main

sys.exit(main())
