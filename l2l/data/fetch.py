"""`l2l-data mnist`: downloads MNIST into the cache, checked, never partial.

    l2l-data mnist                        # into ~/.cache/l2l/mnist
    l2l-data mnist --data_dir=./data      # into ./data/mnist
    python -m l2l.data.fetch mnist --mirror=https://example.org/mnist/

The four IDX files go into `<directory>/mnist/`, where `<directory>` is
`--data_dir`, else $L2L_DATA_DIR, else the cache (`datasets.cache_dir()`,
~/.cache/l2l); `--problem=mnist` looks in the same places, so it finds them
with no flag. Mirrors are tried in order: those given with `--mirror`, then
those in $L2L_MNIST_MIRRORS (separated by spaces), then `MNIST_MIRRORS`.

Each file is streamed into a temporary file beside its destination and
checked before it takes its name (`l2l.files.atomic_writer`): a download
that is cut short, is not gzip, or whose content is not MNIST's is refused
and leaves nothing behind, and the next mirror is tried. What is checked is
the decompressed content (its size and sha256), not the archive's bytes, so
any faithful re-compression passes (the copies this table was computed from
are one: their archives differ from the mirrors' but their content is the
same, and matches the published md5 of every uncompressed file). A file
already present is checked and kept; one that fails the check is never
replaced: the command stops and names it.

Progress shows as a bar on a terminal and not at all off one. Errors are one
line on stderr and exit status 1.
"""

import argparse
import collections
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib

import tqdm

from l2l import checks
from l2l import files
from l2l.data import datasets

FileCheck = collections.namedtuple("FileCheck", "size, sha256")
FileCheck.__doc__ = """What a file's decompressed content must be.

size: its length in bytes.
sha256: its sha256, in hex.
"""

Dataset = collections.namedtuple("Dataset", "subdir, files, mirrors, env_var")
Dataset.__doc__ = """A data set the command can fetch.

subdir: the subdirectory of the data directory its files go into.
files: {file name: `FileCheck`}, fetched in this order.
mirrors: base URLs tried in order after the user's.
env_var: the environment variable that adds mirrors.
"""

# The content of the original files: sizes and sha256 of the decompressed
# IDX data. The md5s of the same content, as MNIST's users publish them,
# are 6bbc9ace898e44ae57da46a324031adb (train images),
# a25bea736e30d166cdddb491f175f624 (train labels),
# 2646ac647ad5339dbf082846283269ea (test images) and
# 27ae3e4e09519cfbb04c329615203637 (test labels).
MNIST_FILES = collections.OrderedDict([
    ("train-images-idx3-ubyte.gz", FileCheck(
        47040016,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db")),
    ("train-labels-idx1-ubyte.gz", FileCheck(
        60008,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5")),
    ("t10k-images-idx3-ubyte.gz", FileCheck(
        7840016,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7")),
    ("t10k-labels-idx1-ubyte.gz", FileCheck(
        10008,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")),
])

# The mirrors PyTorch's and TensorFlow's MNIST readers use, then Yann
# LeCun's page, which now often refuses downloads.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

DATASETS = {
    "mnist": Dataset("mnist", MNIST_FILES, MNIST_MIRRORS,
                     "L2L_MNIST_MIRRORS"),
}

# Seconds to wait for a mirror to connect or send the next bytes.
DEFAULT_TIMEOUT = 30.0
# The longest wait for a mirror --timeout takes: a day. (The socket's
# timeout is a time_t; 1e300 seconds overflows it.)
MAX_TIMEOUT = 86400.0
_CHUNK_BYTES = 1 << 16
_SCHEMES = ("http", "https")
# A gzip archive of incompressible data is a little larger than the data;
# a mirror that sends more than this is sending something else.
_ARCHIVE_SLACK_BYTES = 1 << 20


class FetchError(Exception):
  """A file could not be fetched, or one present fails its check."""


class _BadCopy(Exception):
  """A mirror's copy (or a file present) is not the file: says why."""


class _ContentCheck:
  """Checks a gzip archive's decompressed content as its bytes arrive."""

  def __init__(self, check):
    self._check = check
    self._inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    self._digest = hashlib.sha256()
    self._size = 0
    self._archive_size = 0

  def update(self, chunk):
    """Takes the archive's next bytes.

    Raises:
      _BadCopy: if they are not gzip, run past the stream's end or make
        the content longer than it should be.
    """
    self._archive_size += len(chunk)
    if self._archive_size > self._check.size + _ARCHIVE_SLACK_BYTES:
      raise _BadCopy("it is larger than any gzip of the file ({} bytes "
                     "so far)".format(self._archive_size))
    if self._inflate.eof:
      raise _BadCopy("it has data after the end of its gzip stream")
    pending = chunk
    while pending:
      # At most one byte more than the content may still hold, so no
      # archive expands without limit.
      try:
        data = self._inflate.decompress(pending,
                                        self._check.size - self._size + 1)
      except zlib.error as error:
        raise _BadCopy("it is not a valid gzip archive ({})".format(
            error)) from error
      self._size += len(data)
      if self._size > self._check.size:
        raise _BadCopy("its content is longer than the {} bytes expected"
                       .format(self._check.size))
      self._digest.update(data)
      pending = self._inflate.unconsumed_tail
    if self._inflate.unused_data:
      raise _BadCopy("it has data after the end of its gzip stream")

  def finish(self):
    """Raises _BadCopy unless the archive held exactly the expected file."""
    if not self._inflate.eof:
      raise _BadCopy("it is truncated: its gzip stream ends early, after "
                     "{} of {} bytes of content".format(self._size,
                                                        self._check.size))
    if self._size != self._check.size:
      raise _BadCopy("its content is {} bytes, expected {}".format(
          self._size, self._check.size))
    digest = self._digest.hexdigest()
    if digest != self._check.sha256:
      raise _BadCopy("its content's sha256 is {}, expected {}".format(
          digest, self._check.sha256))


def check_file(path, check):
  """Checks a gzip file on disk against its `FileCheck`.

  Returns:
    None if it holds exactly the expected content, else why not.
  """
  content = _ContentCheck(check)
  try:
    with open(path, "rb") as stream:
      for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
        content.update(chunk)
    content.finish()
  except _BadCopy as reason:
    return str(reason)
  return None


def mirrors_for(dataset, extra=()):
  """The mirrors to try, in order: `extra`, the env var's, the standard.

  Args:
    dataset: a `Dataset`.
    extra: base URLs given on the command line.

  Returns:
    Base URLs, each ending in "/", each once.

  Raises:
    FetchError: for a URL that is not http or https.
  """
  given = list(extra) + os.environ.get(dataset.env_var, "").split()
  mirrors = []
  for url in given + list(dataset.mirrors):
    try:
      scheme = urllib.parse.urlparse(url).scheme
    except ValueError:
      # Malformed (e.g. "http://[::1", an IPv6 host without its bracket).
      scheme = None
    if scheme not in _SCHEMES or "://" not in url:
      raise FetchError("mirror {!r} is not an http or https URL (e.g. "
                       "https://example.org/mnist/).".format(url))
    url = url if url.endswith("/") else url + "/"
    if url not in mirrors:
      mirrors.append(url)
  return mirrors


def target_directory(dataset, data_dir=None):
  """Where a data set's files go: `<data dir>/<subdir>`.

  The data directory is `data_dir`, else $L2L_DATA_DIR, else the cache, the
  first of the places the readers search (`datasets.search_roots`).
  """
  return os.path.join(datasets.search_roots(data_dir)[0], dataset.subdir)


def _check_writable(directory):
  """Raises FetchError unless files can be created in `directory`."""
  try:
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory, prefix=".l2l-write-check-"):
      pass
  except OSError as error:
    raise FetchError(
        "cannot write to {}: {}; pass --data_dir or set {} to a writable "
        "directory.".format(directory, error.strerror or error,
                            datasets.ENV_VAR)) from error


def _network_failure(error):
  """A `_BadCopy` saying how a mirror failed."""
  if isinstance(error, urllib.error.URLError) and not isinstance(
      error, urllib.error.HTTPError):
    error = error.reason
  return _BadCopy(str(error))


def _open(url, timeout):
  try:
    return urllib.request.urlopen(urllib.request.Request(
        url, headers={"User-Agent": "l2l-data"}), timeout=timeout)
  except (OSError, http.client.HTTPException, ValueError) as error:
    raise _network_failure(error) from error


def _read(response):
  """The next chunk of a response; a failure is the mirror's."""
  try:
    return response.read(_CHUNK_BYTES)
  except (OSError, http.client.HTTPException) as error:
    raise _network_failure(error) from error


def _download(url, path, check, timeout, show_progress):
  """Downloads `url` to `path` if its content passes `check`.

  The bytes go to a temporary file that takes `path`'s name only once the
  whole content has been checked; on any failure it is removed.

  Raises:
    _BadCopy: if the mirror fails or its copy is not the file.
    OSError: if the local file cannot be written.
  """
  content = _ContentCheck(check)
  with _open(url, timeout) as response:
    length = response.headers.get("Content-Length", "")
    length = int(length) if length.isdigit() else None
    received = 0
    with tqdm.tqdm(total=length, desc=os.path.basename(path), unit="B",
                   unit_scale=True, leave=False,
                   disable=not show_progress) as bar:
      with files.atomic_writer(path) as stream:
        for chunk in iter(lambda: _read(response), b""):
          content.update(chunk)
          stream.write(chunk)
          received += len(chunk)
          bar.update(len(chunk))
        if length is not None and received != length:
          raise _BadCopy("the download was cut short: {} of the {} bytes "
                         "announced arrived".format(received, length))
        content.finish()


def fetch(name="mnist", data_dir=None, mirrors=(), timeout=DEFAULT_TIMEOUT,
          show_progress=False):
  """Downloads a data set's files that are not yet there, checked.

  Args:
    name: a key of `DATASETS`.
    data_dir: the data directory (the files go in its `<subdir>/`); None
      for $L2L_DATA_DIR, else the cache.
    mirrors: base URLs to try before the standard ones.
    timeout: seconds to wait for a mirror.
    show_progress: show a progress bar per download.

  Returns:
    `(directory, {file name: "present" or the URL it came from})`.

  Raises:
    FetchError: for an unknown name or a bad mirror URL, a file present that
      fails its check, a directory that cannot be written, or a file no
      mirror delivered intact (naming what each mirror did).
  """
  if name not in DATASETS:
    raise FetchError("unknown data set {!r}; this command fetches {}."
                     .format(name, ", ".join(sorted(DATASETS))))
  dataset = DATASETS[name]
  urls = mirrors_for(dataset, mirrors)
  directory = target_directory(dataset, data_dir)
  outcome = collections.OrderedDict()
  for file_name, check in dataset.files.items():
    path = os.path.join(directory, file_name)
    if os.path.exists(path):
      # A download killed after another had finished leaves its partial
      # copy, which no later download of this name would remove.
      files.remove_stale_temporaries(path)
      reason = check_file(path, check)
      if reason is not None:
        raise FetchError(
            "{} is already there but {}; move it away and run again (it is "
            "never replaced).".format(path, reason))
      outcome[file_name] = "present"
      continue
    _check_writable(directory)
    failures = []
    for url in (base + file_name for base in urls):
      try:
        _download(url, path, check, timeout, show_progress)
      except _BadCopy as reason:
        failures.append("{}: {}".format(url, reason))
        continue
      outcome[file_name] = url
      break
    else:
      raise FetchError("could not fetch {}: {}.".format(
          file_name, "; ".join(failures)))
  return directory, outcome


class _Parser(argparse.ArgumentParser):
  """argparse, with bad usage reported in one line and exit status 1."""

  def error(self, message):
    _fail("{} (see {} --help).".format(message, self.prog))


def _fail(message):
  sys.stderr.write("Error: {}\n".format(" ".join(str(message).split())))
  sys.exit(1)


def _parser(prog):
  parser = _Parser(prog=prog, description=(
      "Downloads a data set into the directory the l2l problems read it "
      "from, checking every file; a file already there and intact is "
      "kept, and a download that fails its check leaves nothing behind."))
  parser.add_argument("dataset", choices=sorted(DATASETS),
                      help="the data set to fetch")
  parser.add_argument(
      "--data_dir", default=None,
      help="the data directory; the files go into its <dataset>/ "
      "subdirectory (default: ${}, else {})".format(
          datasets.ENV_VAR, datasets.cache_dir()))
  parser.add_argument(
      "--mirror", action="append", default=[],
      help="a base URL to try first (repeatable); ${} adds more".format(
          DATASETS["mnist"].env_var))
  parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                      help="seconds to wait for a mirror (default "
                      "%(default)s)")
  return parser


def main(argv=None, prog="l2l-data"):
  """Runs the command.

  Args:
    argv: the arguments after the program name (default: sys.argv's).
    prog: the program's name in messages.

  Returns:
    The exit status, 0; errors exit with status 1 (130 on Ctrl-C).
  """
  args = _parser(prog).parse_args(argv)
  if not 0 < args.timeout <= MAX_TIMEOUT:
    _fail("--timeout={} is invalid: expected a number of seconds > 0 and at "
          "most {:g} (a day).".format(args.timeout, MAX_TIMEOUT))
  try:
    checks.check_path_given("data_dir", args.data_dir)
  except ValueError as error:
    _fail(error)
  try:
    directory, outcome = fetch(args.dataset, args.data_dir, args.mirror,
                               args.timeout, show_progress=sys.stderr.isatty())
  except (FetchError, OSError) as error:
    _fail(error)
  except KeyboardInterrupt:
    sys.stderr.write("Stopped; no partial file was kept.\n")
    sys.exit(130)
  downloaded = [name for name, how in outcome.items() if how != "present"]
  # The command's result, on stdout as the other commands write theirs.
  sys.stdout.write(
      "{}: {} files checked in {} ({} downloaded, {} already there).\n"
      .format(args.dataset, len(outcome), directory, len(downloaded),
              len(outcome) - len(downloaded)))
  return 0


def run():
  """The `l2l-data` console script."""
  sys.exit(main())


if __name__ == "__main__":
  sys.exit(main(prog="python -m l2l.data.fetch"))
