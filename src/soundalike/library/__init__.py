"""The user's library on disk: the SQLite catalogue (:mod:`.catalog`), the spectrogram feature store
(:mod:`.featurestore`) and the incremental, parallel, resumable scan that fills both (:mod:`.scan`)."""

from .catalog import DESCRIPTOR_MODEL, CatalogError, Library, Track, default_library_dir
from .scan import ScanProblem, ScanSummary, scan

__all__ = ["DESCRIPTOR_MODEL", "CatalogError", "Library", "ScanProblem", "ScanSummary", "Track",
           "default_library_dir", "scan"]
