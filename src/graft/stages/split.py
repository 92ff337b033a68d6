"""Stage ``split``: train/ valid/ test/ folders by each image's content hash."""

from __future__ import annotations

from graft import artifacts
from graft.artifacts import SPLITS
from graft.data.split import split


def run(params) -> None:
    p = params.paths
    table = split(manifest_csv=artifacts.MANIFEST.path(p), data_dir=p.target, out_dir=artifacts.SPLIT.path(p),
                  classes=params.data.target_classes, seed=params.seed, **params.split.model_dump(),
                  hard_links=params.data.target == "fashion_mnist")  # only ingest's own data (paths.raw) is graft's
    counts = table[table["split"].isin(SPLITS)].groupby(["split", "class"]).size().unstack(fill_value=0)
    unused, excluded = int((table["split"] == "").sum()), int((table["split"] == "excluded").sum())
    print(f"split: images per split and class ({unused} usable images unused, {excluded} files excluded; "
          f"{artifacts.SPLIT_TABLE.path(p)})\n{counts.to_string()}")
