"""Decoded evaluation images: each image decoded and transformed once, in parallel, then served from one tensor.

:class:`DecodedCache` keeps every image it has been asked for decoded and transformed, in memory when the
whole data set fits the memory budget (:func:`memory_budget`), else in a memory-mapped file in a cache
folder (:func:`decoded_cache_dir`, or a study's folder). Images are decoded in DataLoader worker processes
(:func:`data_workers`); :func:`objectives.evaluate.batches` uses both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import time
import weakref
import zlib
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .atomic_file import write_atomically
from .errors import DataError
from .paths import cache_dir

logger = logging.getLogger(__name__)

#: Environment variables (README, "Evaluation data"): DataLoader worker processes that decode images, the
#: memory budget of decoded images (bytes, or with a K/M/G/T suffix in powers of 1024; 0 keeps them in files)
#: and the folder of decoded-image files when no study folder is given.
WORKERS_ENV = "DSE_DATA_WORKERS"
MEMORY_ENV = "DSE_DATA_MEMORY"
CACHE_ENV = "DSE_DATA_CACHE"
#: Loader workers by default: min(this, usable CPUs, torch's thread count); none when that is 1.
MAX_WORKERS = 8
#: Default memory budget: this fraction of physical memory (every process holds its own in-memory copy).
MEMORY_FRACTION = 1 / 8
#: Progress bars over images: the rate is always in images/s (tqdm's default turns to s/image below 1/s).
PROGRESS_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}]"
PROGRESS_UNIT = " images"

_FORMAT = 1
_HEADER_BYTES = 4096
_DATA_MAGIC = b"axm-dse decoded images\n"
_INDEX_MAGIC = b"axm-dse decoded index\n"
_DECODE_BATCH = 32  # images per loader batch while decoding; fewer missing images are decoded in this process
_SYNC_SECONDS = 5.0  # a file cache's index is rewritten at most this often while decoding (and at the end)
_memory_reserved = 0  # bytes held by the in-memory caches of this process


def data_workers() -> int:
    """DataLoader worker processes for data sets that decode image files.

    ``$DSE_DATA_WORKERS`` when set (0: decode in this process), else min(8, usable CPUs, torch's thread count),
    0 when that is 1; always 0 in a daemonic process (which may not start children).
    """
    import multiprocessing

    value = os.environ.get(WORKERS_ENV, "").strip()
    if value:
        try:
            workers = int(value)
        except ValueError:
            workers = -1
        if workers < 0:
            raise DataError(f"{WORKERS_ENV} must be a number of loader worker processes (0: none), got {value!r}")
    else:
        import torch

        workers = min(MAX_WORKERS, _usable_cpus(), torch.get_num_threads())
        workers = 0 if workers <= 1 else workers
    if workers and multiprocessing.current_process().daemon:
        return 0
    return workers


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_budget() -> int:
    """Bytes of decoded images a process keeps in memory: ``$DSE_DATA_MEMORY``, else 1/8 of physical memory."""
    value = os.environ.get(MEMORY_ENV, "").strip()
    if value:
        return parse_size(value, MEMORY_ENV)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = 8 << 30
    return int(total * MEMORY_FRACTION)


def parse_size(text: str, what: str = "size") -> int:
    """Bytes of ``text``: a number with an optional K, M, G or T suffix (powers of 1024; ``4G``, ``512MiB``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not match:
        raise DataError(f"{what} must be a number of bytes such as 4G, 512M or 0, got {text!r}")
    return int(float(match.group(1)) * 1024 ** " kmgt".index(match.group(2).lower() or " "))


def decoded_cache_dir() -> Path:
    """Where decoded images that do not fit in memory are kept without a study folder: ``$DSE_DATA_CACHE``,
    else ``decoded/`` in the user cache."""
    return Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else cache_dir() / "decoded"


def _release_memory(nbytes: int) -> None:
    global _memory_reserved
    _memory_reserved -= nbytes


class DecodedCache:
    """A data set of (image, label) whose images are decoded and transformed once, then served from one tensor.

    Row ``i`` of the tensor is item ``i``'s transformed image, bit for bit; labels are the data set's. Rows
    are filled on demand: :meth:`ensure` decodes those a pass needs that are missing, in DataLoader worker
    processes (:func:`objectives.evaluate.batches` calls it for the cache and any Subset of it, so calibration
    slices, limits and held-out images all index into one cache). The tensor is in memory when the whole data
    set fits ``budget`` (default :func:`memory_budget`, less what this process's other caches hold), else in a
    file in ``folder``, memory-mapped read-only (later runs and other processes map the same file; the page
    cache shares it), else (no folder, images that are not tensors) images are decoded on every use.

    The file ``<folder>/decoded-<folder name>-<hash of its path, transform and loader>.data`` has a header with
    the content key: the folder's path, its sorted files with sizes and modification times, the transform's
    and loader's repr and the torch/torchvision/Pillow versions; a changed folder or transform replaces the
    file. It is created at full size (sparse) under a temporary name and linked into place; which rows hold
    images is in ``.index``, written atomically only after those rows are on disk, with each row's CRC-32.
    A file of the wrong size or header, an unreadable index or a row that fails its CRC is logged and decoded
    again, so an interrupted or damaged cache is never trusted.
    """

    def __init__(self, dataset: Any, folder: str | Path | None = None, budget: int | None = None) -> None:
        self.dataset = dataset
        self.targets = list(dataset.targets)
        self.folder = Path(folder) if folder is not None else None
        self.budget = budget
        self.decoded = 0  #: images this object has decoded
        self._init_state()

    def _init_state(self) -> None:
        self.mode: str | None = None  #: None until first used, then "memory", "file" or "plain" (not kept)
        self.path: Path | None = None  #: file mode: the data file
        self._store: Any = None  # the (N, *image shape) tensor
        self._array: Any = None  # file mode: the read-only numpy memmap behind it
        self._filled: Any = None  # per row: holds its image
        self._verified: Any = None  # file mode, per row: CRC checked by this process
        self._crc: Any = None  # file mode, per row: CRC-32 of the row, -1 when missing
        self._fd: int | None = None
        self._writable = False
        self._nonce = ""
        self._dirty = False
        self._synced = 0.0
        self._index_warned = False

    def __getstate__(self) -> dict[str, Any]:  # a copy reopens its cache on first use (never pickles images)
        return {k: self.__dict__[k] for k in ("dataset", "targets", "folder", "budget", "decoded")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Any:
        index = int(index)
        if index < 0:
            index += len(self)
        self._open()
        if self.mode != "plain":
            row = np.array([index], dtype=np.int64)
            if self.mode == "file":
                self._verify(row)
            if not self._filled[index] and self.stores:
                self._ensure(row, progress=False, workers=0, bulk=False)
            if self._filled[index]:
                return self._store[index], self._label(index)
        return self.dataset[index]

    @property
    def stores(self) -> bool:
        """Whether decoded images are kept (in memory, or in a file this process can write)."""
        self._open()
        return self.mode == "memory" or (self.mode == "file" and self._writable)

    def ensure(self, indices: Iterable[int] | None = None, progress: bool = False) -> None:
        """Decode the images of ``indices`` (default: all) that are not kept yet, in loader worker processes."""
        if not self.stores:
            return
        idx = np.arange(len(self)) if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
        self._ensure(idx, progress, data_workers(), bulk=True)

    def _label(self, index: int) -> Any:
        target = self.targets[index]
        transform = getattr(self.dataset, "target_transform", None)
        return transform(target) if transform is not None else target

    def _ensure(self, idx: np.ndarray, progress: bool, workers: int, bulk: bool) -> None:
        if self.mode == "file":
            if bulk:
                self._adopt_index()
            self._verify(idx)
        todo = idx[~self._filled[idx]]
        try:
            if len(todo):
                self._decode(todo, progress, workers if len(todo) >= _DECODE_BATCH else 0)
        finally:
            if bulk or time.monotonic() - self._synced > _SYNC_SECONDS:
                self._sync()

    def _decode(self, todo: np.ndarray, progress: bool, workers: int) -> None:
        from torch.utils.data import DataLoader, Subset
        from tqdm import tqdm

        loader = DataLoader(Subset(self.dataset, todo.tolist()), batch_size=_DECODE_BATCH, shuffle=False,
                            num_workers=workers)
        done = 0
        with tqdm(total=len(todo), desc="decoding images", unit=PROGRESS_UNIT, bar_format=PROGRESS_FORMAT,
                  disable=not progress, leave=False) as bar:
            try:
                for x, _ in loader:
                    self._put(todo[done: done + len(x)], x)
                    done += len(x)
                    self.decoded += len(x)
                    bar.update(len(x))
                    if self.mode == "file" and time.monotonic() - self._synced > _SYNC_SECONDS:
                        self._sync()
            except RuntimeError as error:
                if "equal size" in str(error):
                    raise DataError(f"{self._source()}: the transform gives images of different shapes; "
                                    "the network's transform must give every image one shape") from None
                raise
            except DataError as error:  # an unreadable image, maybe from a worker process
                from .data import loader_error

                raise DataError(loader_error(error)) from None

    def _put(self, ids: np.ndarray, x: Any) -> None:
        """Keep decoded images ``x`` as rows ``ids``."""
        import torch

        if tuple(x.shape[1:]) != tuple(self._store.shape[1:]) or x.dtype != self._store.dtype:
            where = f" (cached in {self.path}: delete it if the transform changed)" if self.path else ""
            raise DataError(f"{self._source()}: image {int(ids[0])} is {tuple(x.shape[1:])} {x.dtype} after the "
                            f"transform, the others {tuple(self._store.shape[1:])} {self._store.dtype}{where}")
        if self.mode == "memory":
            self._store[torch.from_numpy(ids)] = x
            self._filled[ids] = True
            return
        if not self._writable:
            return
        rows = x.contiguous().numpy()
        try:
            for i, row in zip(ids, rows):
                _pwrite_all(self._fd, row, _HEADER_BYTES + int(i) * row.nbytes)
        except OSError as error:
            self._stop_writing(error)
            return
        for i, row in zip(ids, rows):
            self._crc[i] = zlib.crc32(row)
        self._filled[ids] = True
        self._verified[ids] = True
        self._dirty = True

    def _stop_writing(self, error: OSError) -> None:
        logger.warning("cannot write decoded images to %s (%s); images not kept there yet are decoded on every use",
                       self.path, error.strerror or error)
        self._writable = False

    def _sync(self) -> None:
        """File mode: flush written rows to disk, then list them (and other processes' rows) in the index."""
        if self.mode != "file" or not self._dirty or not self._writable:
            return
        try:
            os.fsync(self._fd)
            self._adopt_index()
            header = json.dumps({"format": _FORMAT, "nonce": self._nonce, "images": len(self)}).encode()
            payload = _INDEX_MAGIC + header + b"\n" + self._crc.astype("<i8").tobytes()
            write_atomically(self._index_path(), lambda handle: handle.write(payload))
        except OSError as error:
            self._stop_writing(error)
            return
        self._dirty = False
        self._synced = time.monotonic()

    def _read_index(self) -> np.ndarray | None:
        """The index's CRC per row, or None (no index, one of an earlier file, or a damaged one: logged)."""
        try:
            data = self._index_path().read_bytes()
        except OSError:
            return None
        try:
            if not data.startswith(_INDEX_MAGIC):
                raise ValueError("no index header")
            end = data.index(b"\n", len(_INDEX_MAGIC))
            meta = json.loads(data[len(_INDEX_MAGIC): end])
            if meta.get("nonce") != self._nonce:
                return None  # the index of a file this one replaced
            crc = np.frombuffer(data[end + 1:], dtype="<i8")
            if meta.get("images") != len(self) or len(crc) != len(self):
                raise ValueError("wrong length")
        except (ValueError, AttributeError) as error:
            if not self._index_warned:
                logger.warning("%s is damaged (%s); the images it listed are decoded again", self._index_path(), error)
                self._index_warned = True
            return None
        return crc

    def _adopt_index(self) -> None:
        """Take the rows the index lists that this process lacks (other processes', earlier runs'); unverified."""
        disk = self._read_index()
        if disk is None:
            return
        take = (self._crc < 0) & (disk >= 0)
        self._crc[take] = disk[take]
        self._filled[take] = True
        self._verified[take] = False

    def _verify(self, idx: np.ndarray) -> None:
        """Check the CRC of the rows ``idx`` not yet checked; rows that fail are logged and decoded again."""
        check = idx[self._filled[idx] & ~self._verified[idx]]
        if not len(check):
            return
        bad = np.array([i for i in check if zlib.crc32(self._array[i]) != self._crc[i]], dtype=np.int64)
        self._verified[check] = True
        if len(bad):
            logger.warning("%s: %d decoded images fail their CRC check (a damaged file); decoding them again",
                           self.path, len(bad))
            self._filled[bad] = False
            self._verified[bad] = False
            self._crc[bad] = -1

    def _open(self) -> None:
        """On first use: an earlier run's file, else memory when the data set fits the budget, else a new file."""
        if self.mode is not None:
            return
        if len(self) == 0:
            self.mode = "plain"
            return
        key = self._content_key() if self.folder is not None else None
        if key is not None and self._open_file(key):
            return
        import torch

        first = self.dataset[0][0]
        self.decoded += 1
        if not isinstance(first, torch.Tensor):
            self.mode = "plain"
            return
        shape = (len(self), *first.shape)
        nbytes = first.element_size() * first.numel() * len(self)
        budget = self.budget if self.budget is not None else memory_budget()
        if nbytes <= budget - _memory_reserved and self._start_memory(shape, first, nbytes):
            return
        if key is not None and self._create_file(key, shape, first.dtype):
            if not self._filled[0]:
                self._put(np.array([0], dtype=np.int64), first[None])
            return
        self.mode = "plain"
        logger.info("%s: %d decoded images (%.1f GB) exceed the memory budget (%.1f GB)%s; decoding them on "
                    "every use", self._source(), len(self), nbytes / 1e9, budget / 1e9,
                    "" if key is None else " and cannot be kept in a file")

    def _start_memory(self, shape: tuple, first: Any, nbytes: int) -> bool:
        global _memory_reserved
        import torch

        try:
            self._store = torch.empty(shape, dtype=first.dtype)
        except RuntimeError as error:  # the budget said yes, the machine no
            logger.warning("cannot keep %.1f GB of decoded images of %s in memory (%s)", nbytes / 1e9, self._source(),
                           error)
            return False
        self._filled = np.zeros(len(self), dtype=bool)
        self.mode = "memory"
        _memory_reserved += nbytes
        weakref.finalize(self, _release_memory, nbytes)
        self._put(np.array([0], dtype=np.int64), first[None])
        return True

    def _source(self) -> str:
        return str(getattr(self.dataset, "root", type(self.dataset).__name__))

    def _recipe(self) -> str:
        """What turns a file into its tensor: the transform, the loader and the libraries' versions."""
        import PIL
        import torch
        import torchvision

        loader = getattr(self.dataset, "loader", None)
        loader_name = f"{getattr(loader, '__module__', '')}.{getattr(loader, '__qualname__', repr(loader))}"
        return "\n".join((
            f"format {_FORMAT}", f"transform {self.dataset.transform!r}", f"loader {loader_name}",
            f"backend {torchvision.get_image_backend()}", f"torch {torch.__version__}",
            f"torchvision {torchvision.__version__}", f"Pillow {PIL.__version__}",
        ))

    def _content_key(self) -> str | None:
        """SHA-256 of everything that decides the tensor: folder path, files (sizes, mtimes), recipe; None when
        the data set has no files to key a cache file by."""
        samples, root = getattr(self.dataset, "samples", None), getattr(self.dataset, "root", None)
        if samples is None or root is None:
            return None
        root = os.path.abspath(root)
        digest = hashlib.sha256(f"{root}\n{self._recipe()}\n".encode("utf-8", "surrogateescape"))
        for path, target in samples:
            try:
                st = os.stat(path)
            except OSError as error:
                raise DataError(f"cannot read {path}: {error.strerror or error}") from None
            line = f"{os.path.relpath(path, root)}\t{target}\t{st.st_size}\t{st.st_mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def _data_path(self) -> Path:
        root = os.path.abspath(self.dataset.root)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(root))[:40] or "data"
        where = hashlib.sha256(f"{root}\n{self._recipe()}".encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return self.folder / f"decoded-{name}-{where}.data"

    def _index_path(self) -> Path:
        return self._data_path().with_suffix(".index")

    def _open_file(self, key: str) -> bool:
        """Map an existing data file of this content key; a changed or damaged one is removed (logged)."""
        import torch

        path = self._data_path()
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        except OSError as error:
            logger.warning("cannot open %s (%s); not using it", path, error.strerror or error)
            return False
        problem = None
        try:
            header = os.pread(fd, _HEADER_BYTES, 0)
            if not header.startswith(_DATA_MAGIC) or len(header) != _HEADER_BYTES:
                raise ValueError("no header")
            meta = json.loads(header[len(_DATA_MAGIC):])
            shape, dtype, nonce = tuple(int(n) for n in meta["shape"]), np.dtype(meta["dtype"]), str(meta["nonce"])
            expected = _HEADER_BYTES + int(np.prod(shape)) * dtype.itemsize
            size = os.fstat(fd).st_size
            if meta["key"] != key:
                problem = "changed"
            elif meta.get("format") != _FORMAT or not shape or shape[0] != len(self):
                problem = "a header that does not fit the data set"
            elif size != expected:
                problem = f"{size} bytes, {expected} expected"
        except (ValueError, KeyError, TypeError) as error:
            problem = f"unreadable header: {error}"
        except OSError as error:
            problem = f"unreadable: {error.strerror or error}"
        if problem is not None:
            os.close(fd)
            if problem == "changed":
                logger.info("%s holds the images of an earlier state of %s or its transform; replacing it",
                            path, self._source())
            else:
                logger.warning("decoded-image cache %s is damaged (%s); rebuilding it", path, problem)
            for stale in (path, self._index_path()):
                try:
                    stale.unlink()
                except FileNotFoundError:
                    pass
                except OSError as error:
                    logger.warning("cannot remove %s (%s)", stale, error.strerror or error)
            return False
        import warnings

        self._array = np.memmap(path, dtype=dtype, mode="r", offset=_HEADER_BYTES, shape=shape)
        with warnings.catch_warnings():  # read-only memory: rows are only ever read (and copied into batches)
            warnings.simplefilter("ignore", UserWarning)
            self._store = torch.from_numpy(self._array)
        self._fd, self.path, self._nonce, self._writable, self.mode = fd, path, nonce, True, "file"
        weakref.finalize(self, os.close, fd)
        self._filled = np.zeros(len(self), dtype=bool)
        self._verified = np.zeros(len(self), dtype=bool)
        self._crc = np.full(len(self), -1, dtype=np.int64)
        self._adopt_index()
        return True

    def _create_file(self, key: str, shape: tuple, dtype: Any) -> bool:
        """Create the data file at full size (sparse) under a temporary name, link it into place, map it."""
        import torch

        path = self._data_path()
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        meta = {"format": _FORMAT, "key": key, "nonce": secrets.token_hex(8), "shape": list(shape),
                "dtype": np_dtype.str, "source": self._source()[-300:]}
        header = _DATA_MAGIC + json.dumps(meta).encode()
        header += b" " * (_HEADER_BYTES - 1 - len(header)) + b"\n"
        total = _HEADER_BYTES + int(np.prod(shape)) * np_dtype.itemsize
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(header)
                    out.truncate(total)
                    out.flush()
                    os.fsync(out.fileno())
                try:
                    os.link(tmp, path)  # never replaces: a file another process made first is used instead
                except FileExistsError:
                    pass
                except OSError:  # a file system without hard links
                    os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as error:
            logger.warning("cannot keep decoded images of %s in %s (%s); decoding them on every use",
                           self._source(), self.folder, error.strerror or error)
            return False
        if not self._open_file(key):
            return False
        logger.info("keeping the decoded images of %s in %s (%.1f GB when complete)", self._source(), path, total / 1e9)
        return True


def _pwrite_all(fd: int, data: Any, offset: int) -> None:
    view = memoryview(data).cast("B")
    while len(view):
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def decoded_source(dataset: Any) -> tuple[DecodedCache | None, np.ndarray | None]:
    """The :class:`DecodedCache` under ``dataset`` (itself, or through Subsets) and the cache rows of its items
    (None: all of them); (None, None) for any other data set."""
    from torch.utils.data import Subset

    indices = None
    while isinstance(dataset, Subset):
        own = np.asarray(dataset.indices, dtype=np.int64)
        indices = own if indices is None else own[indices]
        dataset = dataset.dataset
    if isinstance(dataset, DecodedCache):
        return dataset, indices
    return None, None


def decodes_files(dataset: Any) -> bool:
    """Whether iterating ``dataset`` decodes image files: an image folder, a Subset or wrapper of one, or a
    :class:`DecodedCache` that does not keep its images (worth loader worker processes)."""
    import sys

    folder = sys.modules.get("torchvision.datasets.folder")
    for _ in range(64):
        if isinstance(dataset, DecodedCache):
            return not dataset.stores
        if folder is not None and isinstance(dataset, folder.DatasetFolder):
            return True
        dataset = getattr(dataset, "dataset", None)
        if dataset is None:
            return False
    return False
