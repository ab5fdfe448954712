"""Fetches one target with python-tuf's ngclient, the reference TUF client,
from a repository served over HTTP. Usage:
  python3 pytuf-fetch.py BASE_URL ROOT.json TARGET OUT_FILE
Exit 0 and the target's bytes in OUT_FILE on success; exit 1 with the
client's error on stderr when the repository is refused. python-tuf and
securesystemslib come from PYTHONPATH (the pinned pure-Python sources).
"""
import os
import shutil
import sys
import tempfile

from tuf.ngclient import Updater


def main():
    if len(sys.argv) != 5:
        print("usage: python3 pytuf-fetch.py BASE_URL ROOT.json TARGET OUT_FILE", file=sys.stderr)
        return 2
    base, root_file, target, out = sys.argv[1:]
    work = tempfile.mkdtemp(prefix="airlock-pytuf-")
    try:
        meta = os.path.join(work, "metadata")
        tdir = os.path.join(work, "targets")
        os.mkdir(meta)
        os.mkdir(tdir)
        shutil.copyfile(root_file, os.path.join(meta, "root.json"))
        up = Updater(meta, base + "/metadata/", tdir, base + "/targets/")
        up.refresh()
        info = up.get_targetinfo(target)
        if info is None:
            raise ValueError("target " + target + " not found")
        path = up.download_target(info, os.path.join(tdir, "out"))
        shutil.copyfile(path, out)
    except Exception as e:  # report every refusal as one line, exit 1
        msg = "%s: %s" % (type(e).__name__, e)
        if e.__cause__ is not None:
            msg += ": %s: %s" % (type(e.__cause__).__name__, e.__cause__)
        print("python-tuf: " + msg, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
