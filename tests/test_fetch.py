"""Tests for fetch.py: downloads from a local HTTP server on 127.0.0.1.

The server serves tiny IDX files in the real format, gzipped; the data set's
checksum table is replaced by theirs (`fetch.DATASETS` is injectable) and
its standard mirrors by none, so no test reaches the network.
"""

import gzip
import hashlib
import http.server
import os
import shutil
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from l2l.data import datasets
from l2l.data import fetch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MNIST = "/work/shared/data/mnist"
NAMES = tuple(fetch.MNIST_FILES)


def _idx_content():
  """{file name: uncompressed IDX bytes}: 3 train and 2 test examples."""
  rng = np.random.RandomState(0)
  content = {}
  for prefix, count in (("train", 3), ("t10k", 2)):
    images = rng.randint(0, 256, (count, 28, 28)).astype(np.uint8)
    labels = (np.arange(count) * 3 % 10).astype(np.uint8)
    content[prefix + "-images-idx3-ubyte.gz"] = struct.pack(
        ">IIII", 0x803, count, 28, 28) + images.tobytes()
    content[prefix + "-labels-idx1-ubyte.gz"] = struct.pack(
        ">II", 0x801, count) + labels.tobytes()
  return content


CONTENT = _idx_content()
ARCHIVES = {name: gzip.compress(data, mtime=0) for name, data in CONTENT.items()}
CHECKS = {name: fetch.FileCheck(len(data), hashlib.sha256(data).hexdigest())
          for name, data in CONTENT.items()}


def _altered(data):
  """The same length of content with one byte changed."""
  middle = len(data) // 2
  return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


class _Handler(http.server.BaseHTTPRequestHandler):
  """Serves `/<behaviour>/<file name>`; the behaviour is the mirror's."""

  def do_GET(self):  # pylint: disable=invalid-name
    self.server.requests.append(self.path)
    _, behaviour, name = self.path.split("/", 2)
    if behaviour == "missing" or name not in ARCHIVES:
      self.send_error(404)
      return
    payload = ARCHIVES[name]
    length = len(payload)
    if behaviour == "corrupt":
      payload = gzip.compress(_altered(CONTENT[name]), mtime=0)
      length = len(payload)
    elif behaviour == "longer":
      payload = gzip.compress(CONTENT[name] + b"\0" * 100, mtime=0)
      length = len(payload)
    elif behaviour == "html":
      payload = b"<html>Moved</html>"
      length = len(payload)
    elif behaviour == "truncated":
      # Promises the whole archive, sends half and hangs up.
      payload = payload[:len(payload) // 2]
    elif behaviour == "cut":
      # No length promised: the archive just stops.
      payload = payload[:len(payload) // 2]
      length = None
    self.send_response(200)
    if length is not None:
      self.send_header("Content-Length", str(length))
    self.end_headers()
    self.wfile.write(payload)
    self.close_connection = True

  def log_message(self, *args):
    del args  # Quiet.


@pytest.fixture
def server(monkeypatch):
  """A local server; `server.url(behaviour)` is a mirror's base URL."""
  for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.delenv("L2L_MNIST_MIRRORS", raising=False)
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  httpd.daemon_threads = True
  httpd.requests = []
  httpd.url = lambda behaviour: "http://127.0.0.1:{}/{}/".format(
      httpd.server_address[1], behaviour)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield httpd
  httpd.shutdown()
  httpd.server_close()


@pytest.fixture(autouse=True)
def _tiny_table(monkeypatch, tmp_path):
  """The tiny files' checks, no standard mirrors, and a private cache."""
  monkeypatch.setitem(fetch.DATASETS, "mnist", fetch.Dataset(
      "mnist", CHECKS, (), "L2L_MNIST_MIRRORS"))
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path / "xdg"))
  datasets.clear_cache()
  yield
  datasets.clear_cache()


def _run_main(capsys, *argv):
  """Runs the command in-process: `(exit status, stdout, stderr)`."""
  try:
    status = fetch.main(list(argv))
  except SystemExit as exit_:
    status = exit_.code
  out, err = capsys.readouterr()
  return status, out, err


def _one_error_line(err):
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith("Error: ")
  return lines[0]


def test_download_and_verify(server, tmp_path, capsys):
  status, out, err = _run_main(capsys, "mnist", "--data_dir",
                               str(tmp_path), "--mirror", server.url("good"))
  directory = tmp_path / "mnist"
  assert status == 0, err
  assert sorted(os.listdir(directory)) == sorted(NAMES)
  for name in NAMES:
    assert (directory / name).read_bytes() == ARCHIVES[name]
  assert "4 downloaded, 0 already there" in out and str(directory) in out
  # The reader finds and parses them.
  images, labels = datasets.load_mnist(str(tmp_path), "train")
  assert images.shape == (3, 784)
  np.testing.assert_array_equal(labels, [0, 3, 6])
  raw = np.frombuffer(CONTENT[NAMES[0]][16:], np.uint8).reshape(3, 784)
  np.testing.assert_allclose(images, raw / 255.0, rtol=1e-6)


@pytest.mark.parametrize("behaviour, reason", [
    ("corrupt", "content's sha256 is"),
    ("longer", "longer than the"),
    ("html", "not a valid gzip archive"),
])
def test_wrong_file_refused(server, tmp_path, capsys, behaviour, reason):
  status, _, err = _run_main(capsys, "mnist", "--data_dir", str(tmp_path),
                             "--mirror", server.url(behaviour))
  line = _one_error_line(err)
  assert status == 1
  assert "could not fetch train-images-idx3-ubyte.gz" in line
  assert reason in line and server.url(behaviour) in line
  # Nothing is left: no file, no temporary file.
  assert os.listdir(tmp_path / "mnist") == []


@pytest.mark.parametrize("behaviour, reason", [
    ("truncated", "cut short"),
    ("cut", "truncated: its gzip stream ends early"),
])
def test_truncated_download_refused(server, tmp_path, capsys, behaviour,
                                    reason):
  status, _, err = _run_main(capsys, "mnist", "--data_dir", str(tmp_path),
                             "--mirror", server.url(behaviour))
  line = _one_error_line(err)
  assert status == 1 and reason in line
  assert os.listdir(tmp_path / "mnist") == []


def test_failing_mirrors_fall_back_to_the_next(server, tmp_path):
  mirrors = [server.url("missing"), server.url("corrupt"), server.url("good")]
  directory, outcome = fetch.fetch("mnist", str(tmp_path), mirrors)
  assert outcome == {name: server.url("good") + name for name in NAMES}
  assert server.requests[:3] == [
      "/missing/" + NAMES[0], "/corrupt/" + NAMES[0], "/good/" + NAMES[0]]
  for name in NAMES:
    with open(os.path.join(directory, name), "rb") as stream:
      assert stream.read() == ARCHIVES[name]


def test_every_mirror_failing_names_each(server, tmp_path):
  with pytest.raises(fetch.FetchError) as error:
    fetch.fetch("mnist", str(tmp_path), [server.url("missing"),
                                         server.url("truncated")])
  message = str(error.value)
  assert "/missing/train-images-idx3-ubyte.gz: HTTP Error 404" in message
  assert "/truncated/train-images-idx3-ubyte.gz: the download was cut" in \
      message


def test_present_files_are_not_downloaded_again(server, tmp_path):
  fetch.fetch("mnist", str(tmp_path), [server.url("good")])
  assert len(server.requests) == 4
  stamps = {n: os.stat(tmp_path / "mnist" / n).st_mtime_ns for n in NAMES}
  _, outcome = fetch.fetch("mnist", str(tmp_path), [server.url("good")])
  assert outcome == {name: "present" for name in NAMES}
  assert len(server.requests) == 4
  assert stamps == {n: os.stat(tmp_path / "mnist" / n).st_mtime_ns
                    for n in NAMES}


def test_a_killed_downloads_leftover_goes_though_its_file_is_there(
    server, tmp_path):
  # A fetch killed while another finished the file: no later download of
  # that name would remove the partial copy.
  fetch.fetch("mnist", str(tmp_path), [server.url("good")])
  leftover = tmp_path / "mnist" / ("." + NAMES[0] + ".abcd_123.tmp")
  leftover.write_bytes(b"partial")
  os.utime(leftover, (time.time() - 60, time.time() - 60))
  _, outcome = fetch.fetch("mnist", str(tmp_path), [server.url("good")])
  assert outcome == {name: "present" for name in NAMES}
  assert not leftover.exists()
  assert sorted(os.listdir(tmp_path / "mnist")) == sorted(NAMES)


def test_only_missing_files_are_downloaded(server, tmp_path):
  directory = tmp_path / "mnist"
  directory.mkdir()
  (directory / NAMES[1]).write_bytes(ARCHIVES[NAMES[1]])
  _, outcome = fetch.fetch("mnist", str(tmp_path), [server.url("good")])
  assert outcome[NAMES[1]] == "present"
  assert sorted(server.requests) == sorted(
      "/good/" + n for n in NAMES if n != NAMES[1])


def test_a_bad_file_present_is_named_and_kept(server, tmp_path, capsys):
  directory = tmp_path / "mnist"
  directory.mkdir()
  bad = directory / NAMES[0]
  bad.write_bytes(ARCHIVES[NAMES[0]][:-20])
  status, _, err = _run_main(capsys, "mnist", "--data_dir", str(tmp_path),
                             "--mirror", server.url("good"))
  line = _one_error_line(err)
  assert status == 1
  assert str(bad) in line and "truncated" in line and "move it away" in line
  assert bad.read_bytes() == ARCHIVES[NAMES[0]][:-20]
  assert server.requests == []


def test_unwritable_directory_refused_in_one_line(server, tmp_path, capsys):
  # Below a regular file: no one, root included, can create it.
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  status, _, err = _run_main(capsys, "mnist", "--data_dir", str(blocker),
                             "--mirror", server.url("good"))
  line = _one_error_line(err)
  assert status == 1
  assert "cannot write to {}".format(blocker / "mnist") in line
  assert "--data_dir" in line and datasets.ENV_VAR in line
  assert server.requests == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_directory_refused(server, tmp_path, capsys):
  directory = tmp_path / "mnist"
  directory.mkdir()
  directory.chmod(0o500)
  try:
    status, _, err = _run_main(capsys, "mnist", "--data_dir", str(tmp_path),
                               "--mirror", server.url("good"))
  finally:
    directory.chmod(0o700)
  assert status == 1 and "cannot write to" in _one_error_line(err)


def test_default_directory_is_the_env_var_then_the_cache(server, tmp_path,
                                                         monkeypatch):
  directory, _ = fetch.fetch("mnist", mirrors=[server.url("good")])
  assert directory == str(tmp_path / "xdg" / "l2l" / "mnist")
  assert directory == os.path.join(datasets.cache_dir(), "mnist")
  # --problem=mnist then reads them with no directory given.
  _, labels = datasets.load_mnist(None, "test")
  np.testing.assert_array_equal(labels, [0, 3])
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "env"))
  directory, _ = fetch.fetch("mnist", mirrors=[server.url("good")])
  assert directory == str(tmp_path / "env" / "mnist")


def test_mirror_order_flag_then_env_then_standard(monkeypatch):
  monkeypatch.setenv("L2L_MNIST_MIRRORS", "http://env.example/a "
                     "https://env.example/b/")
  dataset = fetch.Dataset("mnist", CHECKS, ("https://standard.example/",
                                            "http://env.example/a/"),
                          "L2L_MNIST_MIRRORS")
  assert fetch.mirrors_for(dataset, ["https://flag.example/m"]) == [
      "https://flag.example/m/", "http://env.example/a/",
      "https://env.example/b/", "https://standard.example/"]


@pytest.mark.parametrize("url", ["ftp://example.org/mnist/",
                                 "file:///tmp/mnist/", "example.org/mnist",
                                 # Malformed: urlparse raises on it.
                                 "http://[::1"])
def test_mirror_must_be_http(tmp_path, capsys, url):
  status, _, err = _run_main(capsys, "mnist", "--data_dir", str(tmp_path),
                             "--mirror", url)
  assert status == 1 and "is not an http or https URL" in _one_error_line(err)


@pytest.mark.parametrize("argv, expected", [
    (["cifar"], "invalid choice: 'cifar'"),
    (["mnist", "--timeout=0"], "--timeout=0.0 is invalid"),
    # A socket's timeout is a time_t: these overflowed it in a traceback.
    (["mnist", "--timeout=inf"], "--timeout=inf is invalid: expected a "
     "number of seconds > 0 and at most 86400 (a day)."),
    (["mnist", "--timeout=1e300"], "--timeout=1e+300 is invalid"),
    (["mnist", "--timeout=nan"], "--timeout=nan is invalid"),
    (["mnist", "--data_dir="], "--data_dir= is invalid: expected a path, got "
     "an empty value."),
    (["mnist", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_usage_is_one_line(capsys, argv, expected):
  status, _, err = _run_main(capsys, *argv)
  assert status == 1 and expected in _one_error_line(err)


def test_check_file_on_tiny_archives(tmp_path):
  path = tmp_path / "x.gz"
  path.write_bytes(ARCHIVES[NAMES[1]])
  assert fetch.check_file(str(path), CHECKS[NAMES[1]]) is None
  # Any faithful re-compression passes: the content is what is checked.
  path.write_bytes(gzip.compress(CONTENT[NAMES[1]], compresslevel=1))
  assert fetch.check_file(str(path), CHECKS[NAMES[1]]) is None
  other = CHECKS[NAMES[1]]._replace(sha256="0" * 64)
  assert "sha256 is {}, expected {}".format(
      CHECKS[NAMES[1]].sha256, "0" * 64) in fetch.check_file(str(path), other)
  assert "longer than the 10 bytes" in fetch.check_file(
      str(path), CHECKS[NAMES[3]])


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST),
                    reason="no copy of the original MNIST files")
def test_the_table_matches_the_original_files():
  for name, check in fetch.MNIST_FILES.items():
    assert fetch.check_file(os.path.join(SHARED_MNIST, name), check) is None
  # The published md5 of the uncompressed train images.
  with gzip.open(os.path.join(SHARED_MNIST, NAMES[0]), "rb") as stream:
    assert hashlib.md5(stream.read()).hexdigest() == \
        "6bbc9ace898e44ae57da46a324031adb"


def _command(*argv, env=None):
  return subprocess.run([sys.executable, "-m", "l2l.data.fetch"] + list(argv),
                        capture_output=True, text=True, cwd=ROOT, env=env,
                        timeout=120, check=False)


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST),
                    reason="no copy of the original MNIST files")
def test_command_keeps_the_real_files_present(tmp_path):
  # With the real table and mirrors: files already present are checked,
  # not fetched (an attempt to fetch would fail here, offline).
  shutil.copytree(SHARED_MNIST, tmp_path / "mnist",
                  ignore=shutil.ignore_patterns("README*"))
  env = dict(os.environ, **{datasets.CACHE_ENV_VAR: str(tmp_path / "xdg")})
  env.pop(datasets.ENV_VAR, None)
  result = _command("mnist", "--data_dir=" + str(tmp_path), env=env)
  assert result.returncode == 0, result.stderr
  assert "4 files checked" in result.stdout
  assert "0 downloaded, 4 already there" in result.stdout


def test_command_help_and_refusal(tmp_path):
  result = _command("--help")
  assert result.returncode == 0 and "--mirror" in result.stdout
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  result = _command("mnist", "--data_dir=" + str(blocker))
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [result.stderr.strip()]
  assert "cannot write to" in result.stderr
