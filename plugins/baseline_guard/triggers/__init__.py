"""Triggers: the long waits of the operators, awaited in the triggerer so no worker slot waits."""
