"""Experiments (Argo's ``Experiment``): versions run side by side for a while, with analyses.

Pure decisions over the objects' JSON: :mod:`spec` reads and checks an Experiment, :mod:`manifests` builds
the ReplicaSets, Services and AnalysisRuns it owns, :mod:`decide` turns what is observed into the writes and
the status. The I/O is :mod:`rollouts.controller.experiments`.
"""
