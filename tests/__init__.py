"""Xiuhua test suite (a package so that ``from tests.helpers import wait_until`` works)."""
