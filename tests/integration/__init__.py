"""Integration tests against real servers started by fixtures."""
