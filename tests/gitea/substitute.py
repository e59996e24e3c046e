#!/usr/bin/env python3
"""Makes a Gitea >= 1.27 source tree buildable from the module proxy reachable here.

Usage: substitute.py SRC_DIR PROXY_URL

Gitea 1.27 requires some modules under `gitea.dev/...`, a host the proxy refuses. The same
content is served under `code.gitea.io/...` (the old paths; their go.mod already declares the
`gitea.dev` path). For each such requirement this script downloads the alias's zip and go.mod
from the proxy, checks that they hash (go.sum `h1:`) to exactly what Gitea's own go.sum pins for
the `gitea.dev` module, appends `replace gitea.dev/X => code.gitea.io/X vN` to go.mod and the
alias's go.sum lines to go.sum. A mismatch or an alias the proxy lacks is an error: nothing
unverified is built.

Requirements whose exact version the proxy refuses and that have no alias are listed in BUMPS
(used only by Gitea's migration code, which the tests never touch): those are replaced by a
neighbouring version that the checksum database vouches for (go adds its go.sum lines itself).

Prints the module paths go must not look up in the checksum database (the aliases, which it
does not know; go.sum covers them) as one comma-separated line on stdout.
"""

import base64
import hashlib
import io
import re
import sys
import urllib.error
import urllib.request
import zipfile

# module: (version Gitea requires, version to use instead)
BUMPS = {
    "gitlab.com/gitlab-org/api/client-go/v2": ("v2.42.0", "v2.43.0"),
}


def log(msg):
    print("gitea-build: " + msg, file=sys.stderr)


def escape(path):
    # The proxy protocol's case encoding: upper-case letters become '!' + lower case.
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def fetch(proxy, path, version, ext):
    url = "%s/%s/@v/%s.%s" % (proxy, escape(path), escape(version), ext)
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        raise SystemExit("gitea-build: %s: HTTP %d" % (url, e.code))


def hash_lines(entries):
    text = "".join("%s  %s\n" % (digest, name) for name, digest in sorted(entries))
    return "h1:" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def zip_hash(data, prefix, as_prefix):
    entries = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            if not info.filename.startswith(prefix):
                raise SystemExit("gitea-build: unexpected zip entry " + info.filename)
            name = as_prefix + info.filename[len(prefix):]
            entries.append((name, hashlib.sha256(z.read(info.filename)).hexdigest()))
    return hash_lines(entries)


def gomod_hash(data):
    return hash_lines([("go.mod", hashlib.sha256(data).hexdigest())])


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, proxy = sys.argv[1], sys.argv[2].rstrip("/")
    gomod_path, gosum_path = src + "/go.mod", src + "/go.sum"
    gomod = open(gomod_path).read()
    gosum = open(gosum_path).read()
    pinned = {}
    for line in gosum.splitlines():
        parts = line.split()
        if len(parts) == 3:
            pinned[(parts[0], parts[1])] = parts[2]

    requires = re.findall(r"^\s*(?:require\s+)?(gitea\.dev/\S+)\s+(v\S+)", gomod, re.M)
    replaces, sums, nosumdb = [], [], []
    for path, version in requires:
        alias = "code.gitea.io/" + path[len("gitea.dev/"):]
        want_zip = pinned.get((path, version))
        want_mod = pinned.get((path, version + "/go.mod"))
        if not want_zip or not want_mod:
            raise SystemExit("gitea-build: go.sum pins no hash for %s %s" % (path, version))
        mod = fetch(proxy, alias, version, "mod")
        data = fetch(proxy, alias, version, "zip")
        got_zip = zip_hash(data, "%s@%s/" % (alias, version), "%s@%s/" % (path, version))
        got_mod = gomod_hash(mod)
        if got_zip != want_zip or got_mod != want_mod:
            raise SystemExit(
                "gitea-build: %s@%s differs from the %s@%s Gitea pins (zip %s vs %s, go.mod %s vs %s)"
                % (alias, version, path, version, got_zip, want_zip, got_mod, want_mod)
            )
        log("%s %s = %s %s (same content as Gitea's go.sum pins: %s)" % (path, version, alias, version, want_zip))
        replaces.append("replace %s => %s %s" % (path, alias, version))
        own = zip_hash(data, "%s@%s/" % (alias, version), "%s@%s/" % (alias, version))
        sums.append("%s %s %s" % (alias, version, own))
        sums.append("%s %s/go.mod %s" % (alias, version, got_mod))
        nosumdb.append(alias)

    for path, (old, new) in BUMPS.items():
        if re.search(r"^\s*(?:require\s+)?%s\s+%s\b" % (re.escape(path), re.escape(old)), gomod, re.M):
            log("%s %s is not served by the proxy; using %s (migration code only)" % (path, old, new))
            replaces.append("replace %s => %s %s" % (path, path, new))

    with open(gomod_path, "a") as f:
        f.write("\n// Added by runnel's tests/gitea/build.sh (see substitute.py).\n")
        f.write("\n".join(replaces) + "\n")
    with open(gosum_path, "a") as f:
        f.write("\n".join(sums) + "\n")
    print(",".join(nosumdb))


if __name__ == "__main__":
    main()
