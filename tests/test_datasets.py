"""Tests for datasets.py, using tiny files in the real on-disk formats."""

import gzip
import os
import struct

import numpy as np
import pytest


from l2l.data import datasets

CIFAR_RECORD = 3073


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch, tmp_path_factory):
  # Each test builds its own files; stale cache entries must not leak, and
  # the download cache is an empty directory of the test's own.
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  monkeypatch.setenv(datasets.CACHE_ENV_VAR,
                     str(tmp_path_factory.mktemp("xdg")))
  datasets.clear_cache()
  yield
  datasets.clear_cache()


# ------------------------------------------------------------- writers ---


def _mnist_pixels(n, offset):
  """Deterministic, distinct uint8 images of shape [n, 28, 28]."""
  values = np.arange(n * 784, dtype=np.int64) * 7 + offset
  return (values % 256).astype(np.uint8).reshape(n, 28, 28)


def _idx_images_bytes(images, magic=2051):
  n, rows, cols = images.shape
  return struct.pack(">IIII", magic, n, rows, cols) + images.tobytes()


def _idx_labels_bytes(labels, magic=2049):
  return struct.pack(">II", magic, len(labels)) + bytes(labels)


def _write(path, payload, compress=False):
  opener = gzip.open if compress else open
  with opener(str(path), "wb") as f:
    f.write(payload)


def _write_mnist_idx(directory, compress=False):
  """Writes 5 train and 3 test examples; returns the expected arrays."""
  directory.mkdir(parents=True, exist_ok=True)
  suffix = ".gz" if compress else ""
  data = {
      "train": (_mnist_pixels(5, 0), np.array([0, 1, 2, 9, 4], np.uint8)),
      "test": (_mnist_pixels(3, 100), np.array([7, 3, 5], np.uint8)),
  }
  prefixes = {"train": "train", "test": "t10k"}
  for split, (images, labels) in data.items():
    prefix = prefixes[split]
    _write(directory / (prefix + "-images-idx3-ubyte" + suffix),
           _idx_images_bytes(images), compress)
    _write(directory / (prefix + "-labels-idx1-ubyte" + suffix),
           _idx_labels_bytes(labels), compress)
  return data


def _check_mnist(result, images, labels):
  got_images, got_labels = result
  assert got_images.dtype == np.float32
  assert got_labels.dtype == np.int32
  assert got_images.shape == (len(labels), 784)
  np.testing.assert_allclose(
      got_images, images.reshape(len(labels), 784) / 255.0, rtol=1e-6)
  np.testing.assert_array_equal(got_labels, labels)


def _cifar_record(label, seed):
  """One record: label byte, then channel-major pixels from a seeded RNG."""
  pixels = np.random.RandomState(seed).randint(0, 256, 3072)
  return bytes([label]) + pixels.astype(np.uint8).tobytes()


def _write_cifar(directory, names, records_per_file=2):
  """Writes batch files; returns their concatenated records in order."""
  directory.mkdir(parents=True, exist_ok=True)
  records = []
  for file_index, name in enumerate(names):
    chunk = [
        _cifar_record((file_index + i) % 10, 10 * file_index + i)
        for i in range(records_per_file)
    ]
    _write(directory / name, b"".join(chunk))
    records.extend(chunk)
  return records


TRAIN_BATCHES = ["data_batch_%d.bin" % i for i in range(1, 6)]

# --------------------------------------------------------------- MNIST ---


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_exact_values(tmp_path, compress):
  expected = _write_mnist_idx(tmp_path, compress)
  for split in ("train", "test"):
    _check_mnist(datasets.load_mnist(str(tmp_path), split), *expected[split])


def test_mnist_dotted_names(tmp_path):
  images = _mnist_pixels(2, 5)
  labels = np.array([3, 8], np.uint8)
  _write(tmp_path / "train-images.idx3-ubyte", _idx_images_bytes(images))
  _write(tmp_path / "train-labels.idx1-ubyte", _idx_labels_bytes(labels))
  _check_mnist(datasets.load_mnist(str(tmp_path)), images, labels)


def test_mnist_files_of_no_images_are_named(tmp_path):
  _write(tmp_path / "train-images.idx3-ubyte",
         _idx_images_bytes(np.zeros((0, 28, 28), np.uint8)))
  _write(tmp_path / "train-labels.idx1-ubyte",
         _idx_labels_bytes(np.zeros(0, np.uint8)))
  with pytest.raises(datasets.DataError) as error:
    datasets.load_mnist(str(tmp_path))
  assert str(error.value).startswith(
      "MNIST files '{}' and '{}' hold no images, expected MNIST's.".format(
          tmp_path / "train-images.idx3-ubyte",
          tmp_path / "train-labels.idx1-ubyte"))


def test_mnist_subdirectory(tmp_path):
  expected = _write_mnist_idx(tmp_path / "mnist", compress=True)
  _check_mnist(datasets.load_mnist(str(tmp_path), "test"), *expected["test"])


def test_mnist_npz(tmp_path):
  x_train, y_train = _mnist_pixels(4, 1), np.array([1, 2, 3, 4], np.uint8)
  x_test, y_test = _mnist_pixels(2, 9), np.array([0, 9], np.uint8)
  np.savez(
      tmp_path / "mnist.npz",
      x_train=x_train,
      y_train=y_train,
      x_test=x_test,
      y_test=y_test)
  _check_mnist(datasets.load_mnist(str(tmp_path), "train"), x_train, y_train)
  _check_mnist(datasets.load_mnist(str(tmp_path), "test"), x_test, y_test)


def test_mnist_uses_env_var(tmp_path, monkeypatch):
  expected = _write_mnist_idx(tmp_path)
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path))
  _check_mnist(datasets.load_mnist(None, "train"), *expected["train"])


def test_mnist_cached_and_read_only(tmp_path):
  _write_mnist_idx(tmp_path)
  first = datasets.load_mnist(str(tmp_path))
  second = datasets.load_mnist(str(tmp_path))
  assert first[0] is second[0]
  with pytest.raises(ValueError):
    first[0][0, 0] = 1.0


def test_mnist_bad_split(tmp_path):
  with pytest.raises(ValueError, match="train, test"):
    datasets.load_mnist(str(tmp_path), "validation")


def test_mnist_wrong_magic(tmp_path):
  _write_mnist_idx(tmp_path)
  bad = tmp_path / "train-images-idx3-ubyte"
  _write(bad, _idx_images_bytes(_mnist_pixels(5, 0), magic=2049))
  with pytest.raises(datasets.DataError) as info:
    datasets.load_mnist(str(tmp_path))
  message = str(info.value)
  assert str(bad) in message
  assert "0x00000801" in message and "0x00000803" in message
  assert "l2l-data mnist" in message


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_truncated_images(tmp_path, compress):
  _write_mnist_idx(tmp_path, compress)
  suffix = ".gz" if compress else ""
  bad = tmp_path / ("train-images-idx3-ubyte" + suffix)
  _write(bad, _idx_images_bytes(_mnist_pixels(5, 0))[:-10], compress)
  with pytest.raises(datasets.DataError) as info:
    datasets.load_mnist(str(tmp_path))
  message = str(info.value)
  assert str(bad) in message and "truncated" in message
  assert str(5 * 784) in message and str(5 * 784 - 10) in message


def test_mnist_overlong_labels(tmp_path):
  _write_mnist_idx(tmp_path)
  bad = tmp_path / "t10k-labels-idx1-ubyte"
  _write(bad, _idx_labels_bytes([7, 3, 5]) + b"\x01")
  with pytest.raises(datasets.DataError, match="too long") as info:
    datasets.load_mnist(str(tmp_path), "test")
  assert str(bad) in str(info.value)


def test_mnist_count_mismatch(tmp_path):
  _write_mnist_idx(tmp_path)
  labels_path = tmp_path / "train-labels-idx1-ubyte"
  _write(labels_path, _idx_labels_bytes([1, 2, 3, 4]))
  with pytest.raises(datasets.DataError) as info:
    datasets.load_mnist(str(tmp_path))
  message = str(info.value)
  assert "5 images but 4 labels" in message
  assert str(labels_path) in message


def test_mnist_label_out_of_range(tmp_path):
  _write_mnist_idx(tmp_path)
  _write(tmp_path / "train-labels-idx1-ubyte",
         _idx_labels_bytes([1, 2, 3, 4, 10]))
  with pytest.raises(datasets.DataError, match="label 10"):
    datasets.load_mnist(str(tmp_path))


def test_mnist_missing_files(tmp_path):
  _write(tmp_path / "train-images-idx3-ubyte",
         _idx_images_bytes(_mnist_pixels(1, 0)))
  with pytest.raises(datasets.DataError) as info:
    datasets.load_mnist(str(tmp_path))
  message = str(info.value)
  assert "train-labels-idx1-ubyte" in message
  assert "mnist.npz" in message
  assert str(tmp_path) in message
  assert os.path.join(str(tmp_path), "mnist") in message
  assert "l2l-data mnist" in message and "python -m l2l.data.fetch" in message


def test_mnist_missing_directory(tmp_path):
  missing = tmp_path / "nowhere"
  with pytest.raises(datasets.DataError) as info:
    datasets.load_mnist(str(missing))
  assert "{} (does not exist)".format(missing) in str(info.value)
  assert "l2l-data mnist" in str(info.value)


# ------------------------------------------------------------ CIFAR-10 ---


def test_cifar_nhwc_layout(tmp_path):
  records = _write_cifar(tmp_path, ["test_batch.bin"])
  images, labels = datasets.load_cifar10(str(tmp_path), "test")
  assert images.shape == (2, 32, 32, 3)
  assert images.dtype == np.float32 and labels.dtype == np.int32
  np.testing.assert_array_equal(labels, [records[0][0], records[1][0]])
  for n, record in enumerate(records):
    for ch, r, c in [(0, 0, 0), (1, 5, 17), (2, 31, 31), (0, 3, 30)]:
      byte = record[1 + ch * 1024 + r * 32 + c]
      assert images[n, r, c, ch] == np.float32(byte / 255.0)
  # Full check against an independent rearrangement of the bytes.
  raw = np.frombuffer(b"".join(records), np.uint8).reshape(2, CIFAR_RECORD)
  want = np.stack([
      raw[:, 1 + ch * 1024:1 + (ch + 1) * 1024].reshape(2, 32, 32)
      for ch in range(3)
  ],
                  axis=-1)
  np.testing.assert_allclose(images, want / 255.0, rtol=1e-6)


def test_cifar_train_concatenates_in_order(tmp_path):
  records = _write_cifar(tmp_path / "cifar-10-batches-bin", TRAIN_BATCHES)
  images, labels = datasets.load_cifar10(str(tmp_path), "train")
  assert images.shape == (10, 32, 32, 3)
  np.testing.assert_array_equal(labels, [rec[0] for rec in records])
  for n, record in enumerate(records):
    assert images[n, 0, 0, 0] == np.float32(record[1] / 255.0)
    assert images[n, 0, 0, 2] == np.float32(record[1 + 2048] / 255.0)
  assert 0.0 <= images.min() and images.max() <= 1.0


def test_cifar_bad_size(tmp_path):
  _write_cifar(tmp_path, ["test_batch.bin"])
  bad = tmp_path / "test_batch.bin"
  _write(bad, bad.read_bytes()[:-1])
  with pytest.raises(datasets.DataError) as info:
    datasets.load_cifar10(str(tmp_path), "test")
  message = str(info.value)
  assert str(bad) in message and "truncated" in message
  assert str(2 * CIFAR_RECORD - 1) in message and "3073" in message
  assert "cifar-10-binary.tar.gz" in message


def test_cifar_bad_label(tmp_path):
  tmp_path.joinpath("test_batch.bin").write_bytes(_cifar_record(12, 0))
  with pytest.raises(datasets.DataError, match="label 12"):
    datasets.load_cifar10(str(tmp_path), "test")


def test_cifar_missing_files(tmp_path):
  _write_cifar(tmp_path, TRAIN_BATCHES[:3])
  with pytest.raises(datasets.DataError) as info:
    datasets.load_cifar10(str(tmp_path), "train")
  message = str(info.value)
  assert "data_batch_4.bin, data_batch_5.bin" in message
  assert "data_batch_1.bin" not in message
  assert os.path.join(str(tmp_path), "cifar-10-batches-bin") in message
  assert "Krizhevsky" in message


def test_cifar_is_found_where_deepminds_code_kept_it(tmp_path, monkeypatch):
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  monkeypatch.setattr(datasets, "cache_dir", lambda: str(tmp_path / "cache"))
  monkeypatch.chdir(tmp_path)
  with pytest.raises(datasets.DataError) as info:
    datasets.load_cifar10(None, "test")
  assert "cifar10 (does not exist)" in str(info.value)
  records = _write_cifar(tmp_path / "cifar10" / "cifar-10-batches-bin",
                         ["test_batch.bin"])
  _, labels = datasets.load_cifar10(None, "test")
  assert labels.tolist() == [record[0] for record in records]


def test_cifar_bad_split(tmp_path):
  with pytest.raises(ValueError, match="valid splits"):
    datasets.load_cifar10(str(tmp_path), "val")


# ------------------------------------------------------ data directory ---


def test_search_roots_order(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path / "xdg"))
  cache = str(tmp_path / "xdg" / "l2l")
  assert datasets.cache_dir() == cache
  assert datasets.search_roots() == [cache]
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "env"))
  assert datasets.search_roots(str(tmp_path / "arg")) == [
      str(tmp_path / "arg"), str(tmp_path / "env"), cache]
  # Each once.
  assert datasets.search_roots(str(tmp_path / "env")) == [
      str(tmp_path / "env"), cache]
  monkeypatch.delenv(datasets.CACHE_ENV_VAR)
  assert datasets.cache_dir() == os.path.join(
      os.path.expanduser("~"), ".cache", "l2l")


def test_cache_is_read_without_a_directory(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path / "xdg"))
  expected = _write_mnist_idx(tmp_path / "xdg" / "l2l" / "mnist",
                              compress=True)
  _check_mnist(datasets.load_mnist(None, "test"), *expected["test"])


def test_argument_then_env_then_cache(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path / "xdg"))
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "env"))
  (tmp_path / "arg").mkdir()
  cached = _write_mnist_idx(tmp_path / "xdg" / "l2l" / "mnist")
  # The argument's directory lacks the files: the env var's is empty too,
  # so the cache is read.
  _check_mnist(datasets.load_mnist(str(tmp_path / "arg"), "train"),
               *cached["train"])
  datasets.clear_cache()
  in_env = _write_mnist_idx(tmp_path / "env")
  in_env["train"][1][:] = [9, 9, 9, 9, 9]
  _write(tmp_path / "env" / "train-labels-idx1-ubyte",
         _idx_labels_bytes(in_env["train"][1]))
  _check_mnist(datasets.load_mnist(str(tmp_path / "arg"), "train"),
               *in_env["train"])
  datasets.clear_cache()
  given = _write_mnist_idx(tmp_path / "arg", compress=True)
  _check_mnist(datasets.load_mnist(str(tmp_path / "arg"), "train"),
               *given["train"])


def test_a_split_is_never_mixed_across_directories(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path / "xdg"))
  cached = _write_mnist_idx(tmp_path / "xdg" / "l2l")
  # The argument's directory holds the images only: its labels would not
  # match them, so the cache's pair is read.
  (tmp_path / "arg").mkdir()
  _write(tmp_path / "arg" / "train-images-idx3-ubyte",
         _idx_images_bytes(_mnist_pixels(2, 50)))
  _check_mnist(datasets.load_mnist(str(tmp_path / "arg"), "train"),
               *cached["train"])


def test_missing_everywhere_names_every_directory(tmp_path, monkeypatch):
  monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path / "xdg"))
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "gone"))
  (tmp_path / "arg").mkdir()
  with pytest.raises(datasets.DataError) as info:
    datasets.load_mnist(str(tmp_path / "arg"), "test")
  message = str(info.value)
  assert "searched {arg} and {arg}/mnist, {gone} (does not exist), {cache} " \
      "(does not exist).".format(arg=tmp_path / "arg",
                                 gone=tmp_path / "gone",
                                 cache=tmp_path / "xdg" / "l2l") in message
  assert "run `l2l-data mnist`" in message
  with pytest.raises(datasets.DataError) as info:
    datasets.load_cifar10(None, "test")
  assert "{} (does not exist)".format(tmp_path / "gone") in str(info.value)
  assert "test_batch.bin" in str(info.value)


# -------------------------------------------------------------- digits ---


def test_digits_shapes_and_range():
  train_x, train_y = datasets.load_digits("train")
  test_x, test_y = datasets.load_digits("test")
  assert len(test_y) == round(1797 * 0.25)
  assert len(train_y) + len(test_y) == 1797
  for images, labels in [(train_x, train_y), (test_x, test_y)]:
    assert images.dtype == np.float32 and labels.dtype == np.int32
    assert images.shape == (len(labels), 64)
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(np.unique(labels)) <= set(range(10))


def _rows(images):
  return {row.tobytes() for row in images}


def test_digits_split_disjoint_and_complete():
  from sklearn.datasets import load_digits as sk_load_digits
  order = np.random.RandomState(3).permutation(1797)
  train_x, _ = datasets.load_digits("train", 0.2, seed=3)
  test_x, test_y = datasets.load_digits("test", 0.2, seed=3)
  raw = sk_load_digits()
  np.testing.assert_array_equal(test_y, raw.target[order[:len(test_y)]])
  np.testing.assert_allclose(
      test_x, raw.data[order[:len(test_y)]] / 16.0, rtol=1e-6)
  combined = np.concatenate([test_x, train_x])
  np.testing.assert_allclose(combined, raw.data[order] / 16.0, rtol=1e-6)


def test_digits_deterministic_per_seed():
  first = datasets.load_digits("test", seed=1)
  again = datasets.load_digits("test", seed=1)
  other = datasets.load_digits("test", seed=2)
  np.testing.assert_array_equal(first[0], again[0])
  np.testing.assert_array_equal(first[1], again[1])
  assert not np.array_equal(first[0], other[0])
  assert _rows(first[0]) != _rows(other[0])


def test_digits_bad_arguments():
  with pytest.raises(ValueError, match="valid splits"):
    datasets.load_digits("dev")
  with pytest.raises(ValueError, match="test_fraction"):
    datasets.load_digits("test", test_fraction=1.0)


# ---------------------------------------------------------------- tables ---


@pytest.mark.parametrize("name, features, classes", [
    ("digits", 64, 10), ("wine", 13, 3), ("breast_cancer", 30, 2),
    ("iris", 4, 3)])
def test_table_shapes_and_standardisation(name, features, classes):
  train_x, train_y = datasets.load_table(name)
  test_x, test_y = datasets.load_table(name, "test")
  assert train_x.shape[1] == test_x.shape[1] == features
  assert train_x.dtype == np.float32 and train_y.dtype == np.int32
  assert set(np.unique(train_y)) == set(range(classes))
  np.testing.assert_allclose(train_x.mean(axis=0), 0, atol=1e-4)
  std = train_x.std(axis=0)
  np.testing.assert_allclose(std[std > 0], 1, rtol=1e-3)
  assert len(test_x) == len(test_y) == round((len(train_x) + len(test_x)) / 4)


def test_table_test_split_uses_the_train_statistics():
  raw_train, _ = datasets.load_table("wine", standardize=False)
  raw_test, _ = datasets.load_table("wine", "test", standardize=False)
  test_x, _ = datasets.load_table("wine", "test")
  expected = (raw_test - raw_train.mean(0)) / raw_train.std(0)
  np.testing.assert_allclose(test_x, expected, rtol=1e-4, atol=1e-4)
  assert abs(test_x.mean()) > 1e-3  # Not re-centred on its own statistics.


def test_table_errors():
  with pytest.raises(ValueError, match="Unknown table 'mnist'"):
    datasets.load_table("mnist")
  with pytest.raises(ValueError, match="Unknown split"):
    datasets.load_table("iris", "validation")


def test_mnist_corrupt_gzip_is_one_data_error(tmp_path):
  _write_mnist_idx(tmp_path, compress=True)
  bad = tmp_path / "train-images-idx3-ubyte.gz"
  payload = bytearray(bad.read_bytes())
  # Damage the deflate stream past the gzip header: zlib.error, not OSError.
  payload[20:40] = b"\xff" * 20
  bad.write_bytes(bytes(payload))
  with pytest.raises(datasets.DataError) as info:
    datasets.load_mnist(str(tmp_path))
  message = str(info.value)
  assert "Could not read {!r}".format(str(bad)) in message
  assert "\n" not in message.splitlines()[0]
  # The fetch command never replaces a file that is there: the hint says
  # to delete it, and where the fetch puts the files of a data directory.
  assert message.endswith("(with --data_dir=DIR, into DIR/mnist/), or place "
                          "them (or a Keras mnist.npz) in the data directory "
                          "or in its 'mnist/' subdirectory. A file that is "
                          "there but broken is never replaced: delete it "
                          "first.")
