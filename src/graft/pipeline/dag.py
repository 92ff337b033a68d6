"""The pipeline graph as DVC sees it, for drivers such as the Prefect flow.

The stage order is read from DVC's own graph of ``dvc.yaml``, the only pipeline graph; it is
never written down twice.
"""

from __future__ import annotations

from pathlib import Path


def stage_order(root: str | Path = ".") -> list[str]:
    """Names of the pipeline's stages in an order DVC can run them (dependencies first)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        names = {stage: getattr(stage, "name", None) or "" for stage in graph.nodes}
        order = nx.lexicographical_topological_sort(graph.reverse(copy=True), key=lambda s: names[s])
        return [names[s] for s in order if names[s]]  # .dvc files (no name) are data, not stages
