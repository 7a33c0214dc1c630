"""Adapter interface and registry: one adapter turns one source's files into a VideoDataset."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from vidpop.config import dataset_dir
from vidpop.data.schema import VideoDataset
from vidpop.errors import DataNotFoundError, DownloadUnavailableError, VidpopError

_ADAPTERS: dict[str, type[Adapter]] = {}


class Adapter(ABC):
    """Reads one source into vidpop's schema.

    Subclasses set ``name`` (the registry key), ``staged_name`` (the folder under the data
    root, usually equal to ``name``), ``description`` and ``expected_rows`` (table -> count
    documented in the source's SOURCE.md, checked by the tests), and implement :meth:`read`.
    """

    name: ClassVar[str]
    staged_name: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    expected_rows: ClassVar[dict[str, int]] = {}
    #: Official download location for users with the network (None: no official download).
    download_url: ClassVar[str | None] = None

    def __init__(self, **options: Any) -> None:
        self.options = options

    def default_source(self) -> Path:
        return dataset_dir(self.staged_name or self.name)

    def load(self, src: str | Path | None = None) -> VideoDataset:
        """Read the dataset from ``src`` (default: the staged copy under the data root)."""
        path = Path(src) if src is not None else self.default_source()
        if not path.exists():
            raise DataNotFoundError(
                f"{self.name}: no data at {path}. Point VIDPOP_DATA at the folder holding "
                f"'{self.staged_name or self.name}/', pass the source folder explicitly, or run "
                f"`vidpop data download {self.name}` where the network allows."
            )
        ds = self.read(path)
        ds.meta.setdefault("adapter", self.name)
        ds.meta.setdefault("source", str(path))
        return ds

    @abstractmethod
    def read(self, path: Path) -> VideoDataset:
        """Parse the files under ``path``."""

    def download(self, dest: str | Path) -> Path:
        """Fetch the dataset from its official source into ``dest``.

        The default implementation fetches ``download_url``; adapters with several files override it.
        Offline, this raises :class:`DownloadUnavailableError` with a clear message.
        """
        if not self.download_url:
            raise VidpopError(f"{self.name}: no official download; pass a local folder instead")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / Path(self.download_url).name
        fetch_url(self.download_url, target)
        return dest


def source_file(adapter: str, path: Path, rel: str, hint: str = "", single: bool = False) -> Path:
    """The source file ``path / rel`` of an adapter (``path`` itself when ``single`` and it is a file), else
    :class:`DataNotFoundError` naming the adapter, the path and what was expected (``hint``)."""
    f = path if single and path.is_file() else path / rel
    if not f.exists():
        raise DataNotFoundError(f"{adapter}: {f} not found ({hint or f'expected the file {rel}'})")
    return f


def stable_id(prefix: str, *parts: str) -> str:
    """A short id that depends only on ``parts`` (sha1 of them joined by the unit separator)."""
    return prefix + hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:12]


def fetch_url(url: str, target: Path, timeout: float = 30.0, headers: dict[str, str] | None = None) -> Path:
    """Download ``url`` to ``target`` atomically; raise a clear error when offline.

    ``headers`` are sent with the request (some servers refuse urllib's default User-Agent).
    """
    tmp = target.with_name(target.name + ".part")
    try:
        req = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(tmp, "wb") as fh:
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadUnavailableError(
            f"could not download {url} ({exc}). Without network access, pass a local copy of the data instead."
        ) from exc
    tmp.replace(target)
    return target


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator adding an adapter to the registry under ``cls.name``."""
    if cls.name in _ADAPTERS and _ADAPTERS[cls.name] is not cls:
        raise ValueError(f"adapter '{cls.name}' registered twice")
    _ADAPTERS[cls.name] = cls
    return cls


def adapter_names() -> list[str]:
    _import_all()
    return sorted(_ADAPTERS)


def get_adapter(name: str, **options: Any) -> Adapter:
    _import_all()
    if name not in _ADAPTERS:
        raise VidpopError(f"unknown adapter '{name}'; known: {', '.join(sorted(_ADAPTERS))}")
    return _ADAPTERS[name](**options)


def load_dataset(name_or_dir: str | Path, limit: int | None = None, seed: int = 0) -> VideoDataset:
    """The one loader behind every ``--data``: an imported dataset folder (``manifest.json``) or an adapter
    name read from the staged data; ``limit`` keeps a seeded random sample of that many videos. Anything
    else is a user error in one line (:class:`VidpopError`)."""
    p = Path(name_or_dir)
    if (p / "manifest.json").exists():
        return VideoDataset.load(p).sample(limit, seed)
    if p.is_dir():
        raise VidpopError(f"--data {name_or_dir}: folder has no manifest.json (import it with `vidpop data import`)")
    try:
        adapter = get_adapter(str(name_or_dir))
    except VidpopError as exc:
        raise VidpopError(
            f"--data {str(name_or_dir)!r} is neither an imported dataset folder nor an adapter: {exc}"
        ) from exc
    return adapter.load().sample(limit, seed)


def _import_all() -> None:
    # Adapters register themselves on import; import every module of this package once.
    import importlib
    import pkgutil

    import vidpop.data.adapters as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "base":
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
