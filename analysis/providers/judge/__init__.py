"""The statistical judge provider: ``provider`` (measuring), ``spec`` (settings and validation), ``answers``
(Prometheus answers to counts and values), ``verdicts`` (one measurement's judging)."""
