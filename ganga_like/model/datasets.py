"""Datasets for ``j.inputdata`` (category 'datasets'): Ganga's ``GangaDataset``.

``GangaDataset(files=[LocalFile('a.txt'), File('/data/b.dat')])`` is a list of file
objects. With ``treat_as_inputfiles=True`` its files are staged exactly as the job's
``inputfiles`` are (copied into each (sub)job's ``input/`` and working directory
before it runs, see :func:`ganga_like.model.files.stage_inputs`); otherwise the
dataset is only stored with the job, for scripts (and splitters) to read.

Persistence: the files are stored as a tuple of detached copies owned by the
dataset (so an edit of ``j.inputdata.files[0].namePattern`` after submit is refused
like any other configuration edit).
"""

from __future__ import annotations

from typing import Any

from persistent import Persistent

from ..errors import InvalidValue
from .component import Component, Field, FrozenList


def _check_files(value: Any) -> FrozenList:
    if isinstance(value, Component):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"got {type(value).__name__}")
    out = []
    for item in value:
        if not isinstance(item, Component) or item._category != "files":
            raise TypeError(f"item {item!r} is not a file object")
        if item._owner_job is not None:
            item = item.copy()  # one owner per component, as a job's files
        out.append(item)
    return FrozenList(out)


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"got {type(value).__name__}")
    return value


class _FilesField(Field):
    """The files of a dataset: each one owned by the dataset, so edits of a file are
    checked against the job's read-only rule like edits of the dataset itself."""

    def attach(self, obj: Any, value: Any) -> None:
        # Inside the change's own transaction: set after its commit, the owner would
        # mark the stored files changed in the user's connection with nothing to commit
        # them (its next write would then conflict).
        for item in value:
            if item._owner_job is not obj:
                Persistent.__setattr__(item, "_owner_job", obj)


class Dataset(Component):
    """Base of the datasets a job's ``inputdata`` can hold."""

    _category = "datasets"


class GangaDataset(Dataset):
    """A generic dataset of input files: ``GangaDataset(files=[LocalFile('*.txt')],
    treat_as_inputfiles=True)``. With ``treat_as_inputfiles`` its files are staged
    like ``inputfiles``; otherwise they are stored for scripts and splitters to use."""

    files = _FilesField(FrozenList(), _check_files,
                        "a list of file objects, e.g. [LocalFile('*.txt'), File('/data/x.dat')]",
                        "the files of the dataset")
    treat_as_inputfiles = Field(False, _check_bool, "True or False",
                                "stage the files into each (sub)job as inputfiles are")

    def __init__(self, files: Any = None, **values: Any) -> None:
        # Ganga's first positional argument is the list of files: GangaDataset([...]).
        if files is not None:
            values["files"] = files
        super().__init__(**values)

    def _check_component_writable(self, component: Component, name: str) -> None:
        self._check_writable(f"files.{name}")

    def copy(self) -> GangaDataset:
        """A detached, editable copy (its files copied too)."""
        fresh = GangaDataset.__new__(type(self))
        fresh.__dict__["treat_as_inputfiles"] = self.treat_as_inputfiles
        files = FrozenList(f.copy() for f in self.files)
        for item in files:
            Persistent.__setattr__(item, "_owner_job", fresh)
        fresh.__dict__["files"] = files
        return fresh

    # -- Ganga's list-like methods (each one an assignment: validated and committed) --
    def __len__(self) -> int:
        return len(self.files)

    def __bool__(self) -> bool:
        return True  # an object, empty or not, as in Ganga

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return GangaDataset(files=[f.copy() for f in self.files[index]],
                                treat_as_inputfiles=self.treat_as_inputfiles)
        return self.files[index]

    def isEmpty(self) -> bool:  # noqa: N802 (Ganga's name)
        """Whether it has no files."""
        return not self.files

    def append(self, input_file: Any) -> None:
        """Add one file object (``ds.files = [*ds.files, f]``)."""
        self.extend([input_file])

    def extend(self, files: Any, unique: bool = False) -> None:
        """Add file objects; with ``unique``, only those whose name is not there yet."""
        if isinstance(files, (str, bytes)) or not isinstance(files, (list, tuple, GangaDataset)):
            raise InvalidValue("GangaDataset", "extend", files, "a list of file objects")
        names = set(self.getFileNames()) if unique else set()
        added = [f for f in files if not unique or _file_name(f) not in names]
        self.files = [*self.files, *added]

    def getFileNames(self) -> list[str]:  # noqa: N802 (Ganga's name)
        """The names (patterns) of its files."""
        return [_file_name(f) for f in self.files]


def _file_name(item: Any) -> str:
    return str(getattr(item, "namePattern", None) or getattr(item, "name", None) or item)
