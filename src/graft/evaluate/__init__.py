"""Evaluation: metrics, pictures, the transfer lift, the release gate, ``graft compare`` and the summary."""
