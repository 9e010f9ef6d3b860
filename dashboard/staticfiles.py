"""Serve third-party browser assets straight from the installed Python packages.

Plotly ships `plotly.min.js` inside its wheel; taking it from there keeps the site free of CDNs
and keeps the asset's version locked with the Python package that draws the figures.
"""

from collections.abc import Iterator
from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage

VENDOR_FILES = {
    "vendor/plotly.min.js": Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
}


class VendorFinder(BaseFinder):
    def check(self, **kwargs: object) -> list[CheckMessage]:
        return [
            Error(f"{source} is missing; reinstall plotly.", id="dashboard.E001")
            for source in VENDOR_FILES.values()
            if not source.is_file()
        ]

    def find(self, path: str, find_all: bool = False, **kwargs: object) -> str | list[str]:
        source = VENDOR_FILES.get(path)
        if source is None:
            return [] if find_all else None
        return [str(source)] if find_all else str(source)

    def list(self, ignore_patterns: list[str] | None) -> Iterator[tuple[str, FileSystemStorage]]:
        for name, source in VENDOR_FILES.items():
            storage = FileSystemStorage(location=str(source.parent))
            storage.prefix = str(Path(name).parent)
            yield source.name, storage
