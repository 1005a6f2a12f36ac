"""Unit tests of the front door (xiuhua/)."""
