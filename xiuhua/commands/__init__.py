"""CLI command groups; the lead registers each module's ``app`` in ``xiuhua.cli``."""
