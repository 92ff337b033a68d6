"""Stage ``ingest``: the default data as class-per-folder PNGs, or a check of the user's folder."""

from __future__ import annotations

from graft import artifacts
from graft.data.ingest import ingest


def run(params) -> None:
    record = ingest(data=params.data, source_out=params.paths.source, target_dir=params.paths.target)
    artifacts.INGEST.write(params.paths, record)
    for key in ("source", "target"):
        counts = getattr(record, key)
        if "train" in counts:
            print(f"ingest: {key}: {sum(counts['train'].values())} train + {sum(counts['test'].values())} test images "
                  f"in {len(counts['train'])} classes")
