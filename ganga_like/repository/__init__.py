"""The ZODB repository: storage opening, the root registries, transactions with retry."""

from .registry import JobRegistry, TemplateRegistry
from .storage import Repository, open_repository
from .transactions import write

__all__ = ["JobRegistry", "TemplateRegistry", "Repository", "open_repository", "write"]
