"""Local dataset loaders for the l2l learned-optimizer experiments.

Every loader reads files that already sit on disk (nothing is downloaded at
run time) and fails loudly, with a message saying where it looked and how to
obtain the data, when they are missing or malformed. MNIST and CIFAR-10 are
looked for in `search_roots`: the directory given, then $L2L_DATA_DIR, then
the cache that `l2l-data` (l2l/data/fetch.py) downloads MNIST into.

Supported data sets:

* MNIST, from the four IDX files (plain or gzipped) or a Keras ``mnist.npz``.
* CIFAR-10, from the "binary version" batch files.
* scikit-learn's bundled 8x8 digits, which need no files at all.
* scikit-learn's bundled tables (digits, wine, breast_cancer, iris) as
  standardised feature matrices, for the task family and its held-out tasks.

Loaded MNIST and CIFAR-10 arrays are cached per (file set, split) and returned
read-only, so repeated calls are cheap and callers cannot corrupt the cache;
call ``.copy()`` on a result before modifying it in place.
"""

import functools
import gzip
import os
import struct
import zlib

from absl import logging
import numpy as np

from l2l import files

ENV_VAR = "L2L_DATA_DIR"
CACHE_ENV_VAR = files.CACHE_ENV_VAR
# The command that downloads MNIST into the cache (l2l/data/fetch.py).
FETCH_COMMAND = "l2l-data mnist"

NUM_CLASSES = 10

MNIST_SPLITS = ("train", "test")
CIFAR10_SPLITS = ("train", "test")
DIGITS_SPLITS = ("train", "test")

_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801
_MNIST_SHAPE = (28, 28)

# Base names of the IDX files per split, as distributed on LeCun's page.
_MNIST_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_NPZ = "mnist.npz"
_MNIST_SUBDIR = "mnist"

_CIFAR_SIDE = 32
_CIFAR_CHANNELS = 3
_CIFAR_RECORD_BYTES = 1 + _CIFAR_SIDE * _CIFAR_SIDE * _CIFAR_CHANNELS
_CIFAR_FILES = {
    "train": tuple("data_batch_%d.bin" % i for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
_CIFAR_SUBDIR = "cifar-10-batches-bin"
# DeepMind's problems.cifar10 read (and downloaded into) "cifar10" in the
# working directory; it is searched last, so their layout works as it is.
DEEPMIND_CIFAR_DIR = "cifar10"

# Each entry can be hundreds of MB (CIFAR-10 train), so keep few.
_CACHE_SIZE = 4

_HINTS = {
    "mnist": ("To get MNIST, run `" + FETCH_COMMAND + "` (or `python -m "
              "l2l.data.fetch mnist`), which downloads and checks the four "
              "IDX files (train-images-idx3-ubyte.gz, "
              "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
              "t10k-labels-idx1-ubyte.gz) into the cache (with "
              "--data_dir=DIR, into DIR/mnist/), or place them (or a Keras "
              "mnist.npz) in the data directory or in its 'mnist/' "
              "subdirectory. A file that is there but broken is never "
              "replaced: delete it first."),
    "cifar10": ("To get CIFAR-10, download the 'CIFAR-10 binary version' "
                "(cifar-10-binary.tar.gz) from Alex Krizhevsky's CIFAR page "
                "(https://www.cs.toronto.edu/~kriz/cifar.html) and extract it "
                "into the data directory; extraction creates "
                "'cifar-10-batches-bin/'."),
}


class DataError(IOError):
  """Raised when data files are missing, unreadable or malformed."""


def _data_error(message, dataset):
  """Builds a DataError whose message ends with how to obtain the data."""
  hint = _HINTS.get(dataset,
                    "Place the %s data files in the data directory." % dataset)
  return DataError("%s %s" % (message, hint))


def _check_split(split, valid):
  if split not in valid:
    raise ValueError("Unknown split %r; valid splits are: %s." %
                     (split, ", ".join(valid)))


def _read_only(array):
  array.flags.writeable = False
  return array


def cache_dir():
  """The directory `l2l-data` downloads into when given none.

  Returns:
    `files.cache_dir()`: $XDG_CACHE_HOME/l2l if that variable is set, else
    ~/.cache/l2l.
  """
  return files.cache_dir()


def search_roots(data_dir=None):
  """The directories a data set is looked for in, in order.

  Args:
    data_dir: a directory given explicitly (e.g. --data_dir), or None.

  Returns:
    `data_dir`, then $L2L_DATA_DIR, then `cache_dir()`: those that are
    set, "~" expanded, each once.
  """
  roots = []
  for root in (data_dir, os.environ.get(ENV_VAR), cache_dir()):
    if root:
      root = os.path.expanduser(os.fspath(root))
      if root not in roots:
        roots.append(root)
  return roots


def _search(data_dir, subdir, find, dataset, last_roots=()):
  """Finds a data set's files in the first root that holds them.

  Args:
    data_dir: the directory given explicitly, or None.
    subdir: the subdirectory of a root that may hold the files instead.
    find: `find(dirs)` returns what it found in the directories `dirs` (a
      root and its `subdir`), or None.
    dataset: "mnist" or "cifar10", for the messages.
    last_roots: roots tried after `search_roots(data_dir)`.

  Returns:
    `(what find returned, searched)`: `searched` lists every root tried,
    with its state, for an error message.
  """
  searched = []
  roots = search_roots(data_dir)
  for root in last_roots:
    if root not in roots:
      roots.append(root)
  for root in roots:
    if not os.path.isdir(root):
      searched.append("{} (does not exist)".format(root))
      continue
    found = find([root, os.path.join(root, subdir)])
    if found is not None:
      if searched:
        logging.warning("%s: not in %s; reading %s.", dataset,
                        ", ".join(searched), root)
      return found, searched
    searched.append("{} and {}".format(root, os.path.join(root, subdir)))
  return None, searched


def _file_stamp(path):
  # Used as the cache key, so a file rewritten on disk is read again.
  stat = os.stat(path)
  return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


def _find_first(dirs, names):
  """Returns the first existing dir/name, trying dirs in order, or None."""
  for directory in dirs:
    for name in names:
      path = os.path.join(directory, name)
      if os.path.isfile(path):
        return path
  return None


def _read_bytes(path, dataset):
  """Reads a whole file, transparently decompressing a .gz suffix."""
  try:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
      return f.read()
  except (OSError, EOFError, zlib.error) as e:
    # A truncated or corrupt .gz raises zlib.error, not an OSError.
    raise _data_error("Could not read %r: %s." % (path, e), dataset) from e


def _validate_labels(labels, where, dataset):
  if labels.size and int(labels.max()) >= NUM_CLASSES:
    raise _data_error(
        "%s contains label %d; labels must be in 0..%d." %
        (where, int(labels.max()), NUM_CLASSES - 1), dataset)


# ----------------------------------------------------------------- MNIST ---


def _mnist_candidates(base_name):
  """Returns the on-disk spellings an IDX file may have."""
  # Some mirrors ship e.g. "train-images.idx3-ubyte" instead.
  dotted = base_name.replace("-idx", ".idx")
  return [base_name, base_name + ".gz", dotted, dotted + ".gz"]


def _parse_idx(path, magic, num_dims):
  """Reads an IDX file and returns (dims, payload) after validating both.

  Args:
    path: The IDX file, optionally gzipped.
    magic: Expected magic number.
    num_dims: Number of >u4 dimension fields following the magic number.

  Returns:
    A tuple of the dimension sizes and the payload bytes.

  Raises:
    DataError: On a wrong magic number or a payload whose size differs
      from the product of the dimensions.
  """
  data = _read_bytes(path, "mnist")
  header_bytes = 4 * (1 + num_dims)
  if len(data) < header_bytes:
    raise _data_error(
        "IDX file %r is truncated: expected a %d-byte header, got %d "
        "bytes." % (path, header_bytes, len(data)), "mnist")
  fields = struct.unpack(">%dI" % (1 + num_dims), data[:header_bytes])
  if fields[0] != magic:
    raise _data_error(
        "IDX file %r has magic number 0x%08x, expected 0x%08x." %
        (path, fields[0], magic), "mnist")
  dims, payload = fields[1:], data[header_bytes:]
  expected = int(np.prod(dims))
  if len(payload) != expected:
    kind = "truncated" if len(payload) < expected else "too long"
    raise _data_error(
        "IDX file %r is %s: expected %d payload bytes after the header, "
        "got %d." % (path, kind, expected, len(payload)), "mnist")
  return dims, payload


def _read_idx_images(path):
  """Returns the uint8 images of an IDX image file as [N, rows, cols]."""
  (count, rows, cols), payload = _parse_idx(path, _IDX_IMAGES_MAGIC, 3)
  if (rows, cols) != _MNIST_SHAPE:
    raise _data_error(
        "IDX file %r holds %dx%d images, expected %dx%d." %
        ((path, rows, cols) + _MNIST_SHAPE), "mnist")
  return np.frombuffer(payload, dtype=np.uint8).reshape(count, rows, cols)


def _read_idx_labels(path):
  """Returns the uint8 labels of an IDX label file as [N]."""
  _, payload = _parse_idx(path, _IDX_LABELS_MAGIC, 1)
  return np.frombuffer(payload, dtype=np.uint8)


def _finish_mnist(raw_images, raw_labels, where):
  """Validates raw MNIST arrays and converts them to the public form."""
  if raw_images.shape[0] != raw_labels.shape[0]:
    raise _data_error(
        "%s: %d images but %d labels." %
        (where, raw_images.shape[0], raw_labels.shape[0]), "mnist")
  if raw_images.shape[0] == 0:
    raise _data_error("%s hold no images, expected MNIST's." % where,
                      "mnist")
  _validate_labels(raw_labels, where, "mnist")
  images = raw_images.reshape(raw_images.shape[0], -1).astype(np.float32)
  images /= 255.0
  return _read_only(images), _read_only(raw_labels.astype(np.int32))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load_mnist_idx(images_stamp, labels_stamp):
  images_path, labels_path = images_stamp[0], labels_stamp[0]
  logging.info("Reading MNIST from %s and %s", images_path, labels_path)
  raw_images = _read_idx_images(images_path)
  raw_labels = _read_idx_labels(labels_path)
  where = "MNIST files %r and %r" % (images_path, labels_path)
  return _finish_mnist(raw_images, raw_labels, where)


def _read_npz_arrays(path, keys):
  """Returns the arrays stored under `keys` in an .npz file."""
  try:
    archive = files.read_npz(path)
  except (OSError, ValueError) as e:
    raise _data_error("Could not read %r: %s." % (path, e), "mnist") from e
  absent = [key for key in keys if key not in archive]
  if absent:
    raise _data_error("%r lacks key(s) %s; it has %s." %
                      (path, ", ".join(absent), sorted(archive)), "mnist")
  return [archive[key] for key in keys]


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load_mnist_npz(npz_stamp, split):
  path = npz_stamp[0]
  logging.info("Reading MNIST %s split from %s", split, path)
  x_key, y_key = "x_" + split, "y_" + split
  raw_images, raw_labels = _read_npz_arrays(path, [x_key, y_key])
  if raw_images.ndim != 3 or raw_images.shape[1:] != _MNIST_SHAPE:
    raise _data_error(
        "%r: %s has shape %s, expected [N, 28, 28]." %
        (path, x_key, raw_images.shape), "mnist")
  labels_ok = (
      raw_labels.ndim == 1 and np.issubdtype(raw_labels.dtype, np.integer) and
      (raw_labels.size == 0 or raw_labels.min() >= 0))
  if not labels_ok:
    raise _data_error(
        "%r: %s must be a 1-D integer array of labels in 0..%d." %
        (path, y_key, NUM_CLASSES - 1), "mnist")
  return _finish_mnist(raw_images, raw_labels, "MNIST file %r" % path)


def load_mnist(data_dir=None, split="train"):
  """Loads an MNIST split from local files.

  Looks in each of `search_roots(data_dir)` in turn, and in its `mnist/`
  subdirectory, for the IDX files (plain, gzipped, or with the dotted
  "train-images.idx3-ubyte" spelling), falling back to a Keras-style
  `mnist.npz`; the first directory that holds the split is read.

  Args:
    data_dir: Directory holding the files, searched first; then the
      L2L_DATA_DIR environment variable's, then the cache (`cache_dir()`).
    split: "train" (60000 examples) or "test" (10000 examples).

  Returns:
    A tuple `(images, labels)`: read-only float32 images of shape
    [N, 784] scaled to [0, 1], and read-only int32 labels of shape [N].

  Raises:
    ValueError: If `split` is not "train" or "test".
    DataError: If no directory holds the split (the message names every
      directory searched and the command that downloads MNIST), or the
      files found are malformed.
  """
  _check_split(split, MNIST_SPLITS)
  names = _MNIST_IDX_FILES[split]

  def find(dirs):
    paths = [_find_first(dirs, _mnist_candidates(name)) for name in names]
    if all(paths):
      return "idx", paths
    npz_path = _find_first(dirs, [_MNIST_NPZ])
    return None if npz_path is None else ("npz", npz_path)

  found, searched = _search(data_dir, _MNIST_SUBDIR, find, "mnist")
  if found is None:
    raise _data_error(
        "MNIST %s split not found: no directory holds %s (plain or .gz) or "
        "%s; searched %s." % (split, " and ".join(names), _MNIST_NPZ,
                              ", ".join(searched)), "mnist")
  kind, paths = found
  if kind == "idx":
    return _load_mnist_idx(*[_file_stamp(p) for p in paths])
  return _load_mnist_npz(_file_stamp(paths), split)


# -------------------------------------------------------------- CIFAR-10 ---


def _read_cifar_batch(path):
  """Returns the uint8 (pixels [N, 3072], labels [N]) of one batch file."""
  data = _read_bytes(path, "cifar10")
  if not data or len(data) % _CIFAR_RECORD_BYTES:
    raise _data_error(
        "CIFAR-10 file %r is truncated or malformed: its size, %d bytes, "
        "is not a positive multiple of the record size, %d bytes." %
        (path, len(data), _CIFAR_RECORD_BYTES), "cifar10")
  records = np.frombuffer(data, dtype=np.uint8)
  records = records.reshape(-1, _CIFAR_RECORD_BYTES)
  labels = records[:, 0]
  _validate_labels(labels, "CIFAR-10 file %r" % path, "cifar10")
  return records[:, 1:], labels


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _load_cifar10_files(stamps):
  batches = []
  for stamp in stamps:
    logging.info("Reading CIFAR-10 batch %s", stamp[0])
    batches.append(_read_cifar_batch(stamp[0]))
  pixels = np.concatenate([pixels for pixels, _ in batches])
  labels = np.concatenate([labels for _, labels in batches])
  # Records are channel-major (all R, then G, then B); callers want NHWC.
  images = pixels.reshape(-1, _CIFAR_CHANNELS, _CIFAR_SIDE, _CIFAR_SIDE)
  images = images.transpose(0, 2, 3, 1).astype(np.float32, order="C")
  images /= 255.0
  return _read_only(images), _read_only(labels.astype(np.int32))


def load_cifar10(data_dir=None, split="train"):
  """Loads a CIFAR-10 split from the binary-version batch files.

  Looks in each of `search_roots(data_dir)` in turn, then in DeepMind's
  default, `./cifar10`, and in each one's `cifar-10-batches-bin/`
  subdirectory; the first that holds the split is read.

  Args:
    data_dir: Directory holding the files, searched first; then the
      L2L_DATA_DIR environment variable's, then the cache (`cache_dir()`),
      then `./cifar10`.
    split: "train" (data_batch_1.bin .. data_batch_5.bin, concatenated
      in that order) or "test" (test_batch.bin).

  Returns:
    A tuple `(images, labels)`: read-only float32 images of shape
    [N, 32, 32, 3] (NHWC) scaled to [0, 1], and read-only int32 labels
    of shape [N].

  Raises:
    ValueError: If `split` is not "train" or "test".
    DataError: If any file is missing or malformed.
  """
  _check_split(split, CIFAR10_SPLITS)
  names = _CIFAR_FILES[split]
  missing_in = []

  def find(dirs):
    paths = [_find_first(dirs, [name]) for name in names]
    missing = [name for name, path in zip(names, paths) if path is None]
    missing_in.append(missing)
    return None if missing else paths

  paths, searched = _search(data_dir, _CIFAR_SUBDIR, find, "cifar10",
                            last_roots=(DEEPMIND_CIFAR_DIR,))
  if paths is None:
    # The files missing from the directory that came closest.
    missing = min(missing_in, key=len) if missing_in else names
    raise _data_error(
        "CIFAR-10 %s split incomplete: missing %s; searched %s." %
        (split, ", ".join(missing), ", ".join(searched)), "cifar10")
  return _load_cifar10_files(tuple(_file_stamp(p) for p in paths))


# ---------------------------------------------------------------- digits ---


@functools.lru_cache(maxsize=1)
def _digits_raw():
  # Imported lazily: scikit-learn is slow to import and only needed here.
  from sklearn import datasets as sk_datasets
  digits = sk_datasets.load_digits()
  images = (digits.data / 16.0).astype(np.float32)
  return _read_only(images), _read_only(digits.target.astype(np.int32))


def load_digits(split="train", test_fraction=0.25, seed=0):
  """Loads a fixed, seeded split of scikit-learn's bundled 8x8 digits.

  The 1797 images ship with scikit-learn, so no files are needed. The test
  split is the first `round(1797 * test_fraction)` entries of a
  permutation drawn from `np.random.RandomState(seed)`; the train split is
  the rest, so the two never overlap and together cover the whole set.

  Args:
    split: "train" or "test".
    test_fraction: Fraction of the examples in the test split, in (0, 1).
    seed: Seed of the permutation; the same seed gives the same split.

  Returns:
    A tuple `(images, labels)`: float32 images of shape [N, 64] scaled to
    [0, 1], and int32 labels of shape [N]. Both are fresh, writable
    arrays.

  Raises:
    ValueError: If `split` is unknown or `test_fraction` is outside
      (0, 1).
  """
  images, labels = _digits_raw()
  train, test = _seeded_split(images.shape[0], split, test_fraction, seed)
  indices = test if split == "test" else train
  # Fancy indexing copies, so callers may modify the result freely.
  return images[indices], labels[indices]


def _seeded_split(num_examples, split, test_fraction, seed):
  """The `(train, test)` indices of a seeded permutation split.

  Raises:
    ValueError: for an unknown split or `test_fraction` outside (0, 1).
  """
  _check_split(split, DIGITS_SPLITS)
  if not 0.0 < test_fraction < 1.0:
    raise ValueError("test_fraction must be in (0, 1), got %r." %
                     (test_fraction,))
  order = np.random.RandomState(seed).permutation(num_examples)
  num_test = int(round(num_examples * test_fraction))
  return order[num_test:], order[:num_test]


# ---------------------------------------------------------------- tables ---

# scikit-learn's bundled classification tables, by the name `load_table` takes.
TABLES = ("digits", "wine", "breast_cancer", "iris")


@functools.lru_cache(maxsize=len(TABLES))
def _table_raw(name):
  from sklearn import datasets as sk_datasets
  bunch = getattr(sk_datasets, "load_" + name)()
  return (_read_only(bunch.data.astype(np.float32)),
          _read_only(bunch.target.astype(np.int32)))


def load_table(name, split="train", test_fraction=0.25, seed=0,
               standardize=True):
  """Loads a fixed, seeded split of one of scikit-learn's bundled tables.

  As `load_digits`, the test split is the first `round(N * test_fraction)`
  entries of a permutation drawn from `np.random.RandomState(seed)`.

  Args:
    name: one of `TABLES`.
    split: "train" or "test".
    test_fraction: Fraction of the examples in the test split, in (0, 1).
    seed: Seed of the permutation.
    standardize: scale every feature to zero mean and unit variance with the
      train split's statistics (a constant feature is only centred), so the
      test split is scaled exactly as the train split.

  Returns:
    A tuple `(features, labels)`: float32 [N, F] and int32 [N], fresh,
    writable arrays. Labels run from 0 to the number of classes less one.

  Raises:
    ValueError: for an unknown name or split, or `test_fraction` outside
      (0, 1).
  """
  if name not in TABLES:
    raise ValueError("Unknown table {!r}; expected one of {}.".format(
        name, ", ".join(TABLES)))
  features, labels = _table_raw(name)
  train, test = _seeded_split(features.shape[0], split, test_fraction, seed)
  chosen = features[test if split == "test" else train]
  if standardize:
    mean = features[train].mean(axis=0)
    std = features[train].std(axis=0)
    chosen = (chosen - mean) / np.where(std > 0, std, 1.0)
  return chosen.astype(np.float32), labels[test if split == "test" else train]


def clear_cache():
  """Drops all cached MNIST, CIFAR-10, digits and table arrays."""
  _load_mnist_idx.cache_clear()
  _load_mnist_npz.cache_clear()
  _load_cifar10_files.cache_clear()
  _digits_raw.cache_clear()
  _table_raw.cache_clear()
