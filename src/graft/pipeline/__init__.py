"""Driving the pipeline: DVC's stage order, running a stage, the project lock, params overrides
and the Prefect flows (``flows/`` holds thin entry files over :mod:`graft.pipeline.flows`)."""
