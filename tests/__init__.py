import pytest

# The fixtures' own assertions (a Rollout handle's expect_*, the helpers' checks) report like a test's.
pytest.register_assert_rewrite("tests.fixtures")
