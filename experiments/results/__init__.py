"""The read side: what studies and runs recorded, as reports, comparisons, seed replicates and
the search-strategy summary. Opening a store here never creates one."""

from experiments.results.build import artifact_path, build, default_out, gather, log_to_parents
from experiments.results.data import load_studies, open_client, open_storage

__all__ = ["artifact_path", "build", "default_out", "gather", "load_studies", "log_to_parents", "open_client",
           "open_storage"]
