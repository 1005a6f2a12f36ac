"""Tiered rule engine: graded warnings (blue, yellow, orange, red) and dispatch orders.

Not built yet: a later issue fills this package. It exists now so that the import contracts
(components never import each other) already hold over the whole layout.
"""
