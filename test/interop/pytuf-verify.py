"""Parses every metadata file in a repository's metadata folder with
python-tuf's Metadata.from_bytes and verifies its signatures against its
delegating role: each root by the previous root and itself, the top-level
roles by the newest root, delegated targets roles by their delegator.
Usage: python3 pytuf-verify.py METADATA_DIR
Prints one line per verified file; exit 1 on the first refusal.
"""
import os
import re
import sys

from tuf.api.metadata import Metadata, Root, Targets


def load(path):
    with open(path, "rb") as f:
        return Metadata.from_bytes(f.read())


def main():
    d = sys.argv[1]
    files = sorted(os.listdir(d))
    roots = sorted((int(m.group(1)), f) for f in files if (m := re.fullmatch(r"(\d+)\.root\.json", f)))
    if not roots:
        raise ValueError("no N.root.json")
    prev = None
    for _, f in roots:
        md = load(os.path.join(d, f))
        for delegator in ([prev] if prev else []) + [md]:
            delegator.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
        print("verified " + f)
        prev = md
    root = prev.signed
    targets = {}
    for f in files:
        if f.endswith(".root.json") or not f.endswith(".json"):
            continue
        md = load(os.path.join(d, f))
        name = re.sub(r"^\d+\.", "", f)[: -len(".json")]
        if name == "root":
            md.signed  # parsed; the unversioned copy equals the newest root
            prev.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
            print("verified " + f)
            continue
        if name in ("timestamp", "snapshot", "targets"):
            root.verify_delegate(name, md.signed_bytes, md.signatures)
            print("verified " + f)
            if name == "targets":
                targets.setdefault(name, []).append(md)
        else:
            targets.setdefault(name, []).append(md)
    # Delegated roles: verify each by whichever loaded targets role delegates it.
    done = set()
    progress = True
    while progress:
        progress = False
        for name, mds in targets.items():
            if name == "targets" or name in done:
                continue
            for pname, parents in targets.items():
                parent = max(parents, key=lambda m: m.signed.version)
                dg = parent.signed.delegations
                if dg is not None and dg.roles and name in dg.roles and (pname == "targets" or pname in done):
                    for md in mds:
                        parent.signed.verify_delegate(name, md.signed_bytes, md.signatures)
                        print("verified %s version %d" % (name, md.signed.version))
                    done.add(name)
                    progress = True
                    break
    left = [n for n in targets if n != "targets" and n not in done]
    if left:
        raise ValueError("no delegator found for " + ", ".join(left))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:
        print("python-tuf: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
