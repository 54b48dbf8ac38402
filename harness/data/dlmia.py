"""The splits published with DL-MIA (KDD 2022) as grid datasets: `dl-mia-beauty` and
`dl-mia-digital-music`, the shadow and target parts stacked (shadow users first). A membership
cell on them uses the published members and non-members (`harness.families.membership_splits`), not a
seeded partition; set the dataset's `min_user_interactions` and `min_item_interactions` to 1."""

from __future__ import annotations

from pathlib import Path

from recsec.harness.data.loaders import RawData, register_dataset


def _register(name: str, description: str) -> None:
    # harness.families.membership_splits reads the files; imported late, it imports harness.data itself.
    def locate(data_dir: Path) -> list[Path]:
        from recsec.harness.families.membership_splits import published_files
        return published_files(name, data_dir)

    def load(data_dir: Path) -> RawData:
        from recsec.harness.families.membership_splits import published_raw
        return published_raw(name, data_dir)

    register_dataset(name, locate=locate, description=description)(load)


_register("dl-mia-beauty", "DL-MIA's published Beauty shadow and target parts (members: ids < round(n/2))")
_register("dl-mia-digital-music", "DL-MIA's published Digital Music shadow and target parts (members: ids < n//2)")
