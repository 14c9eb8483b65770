"""Everything about measuring a release: analysis runs, providers, conditions, statistics."""
