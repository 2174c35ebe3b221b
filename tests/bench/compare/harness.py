"""Publish one release pair with stitch, zsyncmake and casync, serve it with nginx, update
from the old release with each tool, and measure what the server sent and what it cost.

Every update runs as its own process under GNU time (``%M``: peak RSS of the largest
process, so for a chain of zsync processes it is the largest one), timed from process start
to end (interpreter start-up included). Bytes and requests come from nginx's access log
(``$bytes_sent``: headers and multipart framing included), read between runs: the tools run
one after another, never together.

Server layout (one nginx, root = the work folder)::

    <pair>/www/stitch-old/   stitch repository holding only the old release (install source)
    <pair>/www/stitch/       the same repository plus the new release (update source)
    <pair>/www/zsync/        the new files and one NAME.zsync beside each (zsyncmake -u NAME)
    <pair>/www/casync/       default.castr (zstd chunk store) + new.caidx (folder) or new.caibx
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[3]
STITCH = [sys.executable, "-m", "app.cli"]
TIME = "/usr/bin/time"
# Seconds to let nginx write the last log line (it logs after the response is sent).
LOG_SETTLE = 0.25
# Requests whose bytes count as index/metadata rather than file contents.
META_SUFFIXES = (".fidx", ".groups", ".sub", ".json", ".minisig", ".zsync", ".caibx", ".caidx")


@dataclass
class Pair:
    """Two releases. ``old``/``new`` are folders; a single-file pair is a folder holding one
    file under the same name in both (so every tool sees the same path)."""

    name: str
    old: Path
    new: Path
    kind: str  # "file" or "folder"
    origin: str = ""  # where it came from (generator, package and versions)


@dataclass
class Run:
    tool: str
    sent: int = 0
    requests: int = 0
    walls: list[float] = field(default_factory=list)
    rss_kb: int = 0
    check: str = ""
    publish_s: float | None = None
    note: str = ""
    meta: int = 0  # bytes of indexes, manifests and pointers among ``sent``

    @property
    def wall(self) -> float:
        return statistics.median(self.walls) if self.walls else float("nan")


@dataclass
class PairResult:
    pair: Pair
    files: int
    changed: int
    full: int
    zstd_full: int
    patch: int
    patch_level: str
    runs: list[Run]


# ---------------------------------------------------------------------------------- nginx

class Nginx:
    def __init__(self, root: Path, work: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (work / "logs").mkdir(parents=True, exist_ok=True)
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        self.log = work / "logs" / "access.log"
        conf = work / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(f"""{user}
worker_processes 1; error_log {work}/logs/error.log; pid {work}/nginx.pid;
events {{ worker_connections 512; }}
http {{ access_log off; client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp;
  fastcgi_temp_path {work}/tmp; uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  default_type application/octet-stream; sendfile on; keepalive_requests 100000;
  log_format b '$bytes_sent $status "$request"';
  server {{ listen 127.0.0.1:{self.port}; root {root}; max_ranges 64;
    access_log {self.log} b; }} }}
""")
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-p", str(work), "-c", str(conf),
                                      "-g", "daemon off;"])
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(50):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        self._pos = 0

    def mark(self) -> None:
        time.sleep(LOG_SETTLE)
        self._pos = self.log.stat().st_size if self.log.exists() else 0

    def since_mark(self) -> tuple[int, int, list[str]]:
        """(bytes sent, requests, log lines) since the last ``mark``."""
        time.sleep(LOG_SETTLE)
        with open(self.log, "rb") as f:
            f.seek(self._pos)
            lines = f.read().decode("utf-8", "replace").splitlines()
        return sum(int(x.split()[0]) for x in lines), len(lines), lines

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


# ------------------------------------------------------------------------------- helpers

def files_of(root: Path) -> dict[str, Path]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".stitch")
        for n in sorted(filenames):
            p = Path(dirpath) / n
            if p.is_file() and not p.is_symlink():
                out[p.relative_to(root).as_posix()] = p
    return out


def sha256(p: Path) -> str:
    with open(p, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in files_of(root).values())


def check_tree(expected: dict[str, str], out: Path) -> str:
    """'ok' when every file of the new release is in ``out`` with its SHA-256; extra files
    (left from the old release) are reported, not failed."""
    got = files_of(out) if out.exists() else {}
    bad = [rel for rel, h in expected.items() if rel not in got or sha256(got[rel]) != h]
    extra = sorted(set(got) - set(expected))
    if bad:
        return f"MISMATCH ({len(bad)} files, e.g. {bad[0]})"
    return "ok" if not extra else f"ok, {len(extra)} old file(s) left"


def timed(cmd: list[str], log: Path, cwd: Path | None = None) -> tuple[float, int]:
    """Run ``cmd`` under GNU time, its output appended to ``log``: (wall seconds, peak RSS
    kB). Raises ``RuntimeError`` when it fails."""
    rss = log.with_suffix(".rss")
    with open(log, "ab") as out:
        t = time.perf_counter()
        p = subprocess.run([TIME, "-f", "%M", "-o", str(rss), *cmd], cwd=cwd, stdout=out,
                           stderr=out)
        wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd[:6])}... exited {p.returncode}: see {log}")
    return wall, int(rss.read_text().split()[-1])


def link_tree(src: Path, dst: Path) -> None:
    """Hard-link a tree (fast, no bytes copied) for read-only uses such as serving."""
    for rel, p in files_of(src).items():
        q = dst / rel
        q.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, q)


def copy_tree(src: Path, dst: Path) -> None:
    """A real copy (own inodes) for a folder a tool will modify."""
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)


# ------------------------------------------------------------------------ the comparison

def zstd_figures(pair: Pair, work: Path, level: int,
                 cache: Path | None) -> tuple[int, int, str]:
    """(zstd -3 size of the new release, zstd --patch-from size, level text). Folders are
    compared as deterministic tars (sorted, fixed owner and mtime)."""
    def as_one(tree: Path, name: str) -> Path:
        fs = files_of(tree)
        if pair.kind == "file":
            return next(iter(fs.values()))
        out = work / f"{name}.tar"
        subprocess.run(["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
                        "--mtime=@0", "-cf", str(out), "-C", str(tree), *fs], check=True)
        return out

    old, new = as_one(pair.old, "old"), as_one(pair.new, "new")
    size = max(old.stat().st_size, new.stat().st_size)
    wlog = max(27, math.ceil(math.log2(max(size, 2))) + 1)
    # zstd -19 --patch-from takes ~1 s per MB here; its figures depend only on the bytes, so
    # they are kept in the cache folder keyed by both inputs' SHA-256.
    key = f"{sha256(old)}-{sha256(new)}-{level}-{wlog}"
    cached = json.loads(cache.read_text()) if cache and cache.exists() else {}
    if key in cached:
        return cached[key][0], cached[key][1], f"-{level} --long={wlog}"
    full = work / "new.zst"
    subprocess.run(["zstd", "-q", "-f", "-T0", "-3", f"--long={wlog}", str(new), "-o",
                    str(full)], check=True)
    patch = work / "patch.zst"
    subprocess.run(["zstd", "-q", "-f", "-T0", f"-{level}", f"--long={wlog}",
                    f"--patch-from={old}", str(new), "-o", str(patch)], check=True,
                   stderr=subprocess.DEVNULL)
    if cache:
        cached[key] = [full.stat().st_size, patch.stat().st_size]
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(cached, indent=1))
    return full.stat().st_size, patch.stat().st_size, f"-{level} --long={wlog}"


def compare_pair(pair: Pair, work: Path, nginx: Nginx, web: Path, tools: list[str],
                 repeat: int, patch_level: int, zstd_cache: Path | None,
                 say: Callable[[str], None], profile_dir: Path | None = None,
                 front: str = "") -> PairResult:
    """``front``: the URL clients use instead of nginx's (a delaying proxy in front of it)."""
    www = work / "www"
    out = work / "out"
    logs = work / "logs"
    for d in (www, out, logs):
        d.mkdir(parents=True, exist_ok=True)
    base = f"{front or nginx.url}/{www.relative_to(web).as_posix()}"
    new_files = files_of(pair.new)
    old_files = files_of(pair.old)
    expected = {rel: sha256(p) for rel, p in new_files.items()}
    changed = sum(1 for rel in expected
                  if rel not in old_files or sha256(old_files[rel]) != expected[rel])
    full = sum(p.stat().st_size for p in new_files.values())
    t = time.perf_counter()
    zstd_full, patch, level_txt = zstd_figures(pair, work, patch_level, zstd_cache)
    say(f"  zstd figures ({time.perf_counter() - t:.1f} s): full {full:,}, zstd -3 "
        f"{zstd_full:,}, patch {patch:,}")
    runs: list[Run] = []

    specs: list[tuple[Run, list[str], Callable[[], None], Path, Path | None]] = []

    def measure(run: Run, cmd: list[str], prepare: Callable[[], None], result: Path,
                cwd: Path | None = None) -> None:
        specs.append((run, cmd, prepare, result, cwd))
        runs.append(run)

    def fresh(d: Path) -> None:
        if d.exists():
            shutil.rmtree(d)

    # ---- stitch: old release alone in <v>-old, old + new in <v>. Variants: the defaults
    # (compressed chunk copies and deltas, since issue 16), (tool "stitch-raw") raw ranges
    # only, as the defaults were before, (tool "stitch-2k") that with 2 KiB average chunks,
    # (tool "stitch-z") compressed chunk copies without deltas, (tool "stitch-zs") plus
    # sub-indexes, (tool "stitch-d") --compress --delta spelt out (the defaults).
    raw = ["--no-compress", "--no-delta"]
    variants = (("stitch", [], "stitch (defaults)"),
                ("stitch-raw", raw, "stitch --no-compress --no-delta"),
                ("stitch-2k", [*raw, "--avg-chunk", "2048"],
                 "stitch --no-compress --no-delta, avg 2 KiB chunks"),
                ("stitch-z", ["--compress", "--no-delta"], "stitch --compress --no-delta"),
                ("stitch-z2k", ["--compress", "--no-delta", "--avg-chunk", "2048"],
                 "stitch --compress --no-delta, avg 2 KiB chunks"),
                ("stitch-zs", ["--compress", "--no-delta", "--subchunks"],
                 "stitch --compress --no-delta --subchunks"),
                ("stitch-d", ["--compress", "--delta"], "stitch --compress --delta"))
    # Signed, as a publisher should: every stitch update below checks the signature.
    key = work / "stitch.key"
    if any(t.startswith("stitch") or t == "floor" for t in tools) and not key.exists():
        subprocess.run([*STITCH, "keygen", str(key)], cwd=REPO_ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    signed = ["--sign-key", str(key)]
    trust = ["--pubkey", f"{key}.pub"]
    for variant, opts, label in variants:
        wanted = [t for t in tools if t == variant or (variant, t) in (
            ("stitch", "stitch-cold"), ("stitch", "floor"), ("stitch-d", "stitch-d1"))]
        if not wanted:
            continue
        opts = [*opts, *signed]
        subprocess.run([*STITCH, "publish", str(pair.old), str(www / f"{variant}-old"),
                        "--version", "1.0.0", *opts], cwd=REPO_ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        shutil.copytree(www / f"{variant}-old", www / variant)
        t = time.perf_counter()
        subprocess.run([*STITCH, "publish", str(pair.new), str(www / variant),
                        "--version", "2.0.0", *opts], cwd=REPO_ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        stitch_publish = time.perf_counter() - t
        update = ["update", "--url", f"{base}/{variant}", "--progress", "none", *trust]

        if variant in tools:
            inst = out / variant
            run = Run(label, publish_s=stitch_publish)

            def install_old(inst: Path = inst, variant: str = variant) -> None:
                fresh(inst)
                subprocess.run([*STITCH, "update", "--url", f"{base}/{variant}-old", "--dir",
                                str(inst), "--progress", "none", *trust], cwd=REPO_ROOT,
                               check=True, stderr=subprocess.DEVNULL)
            measure(run, [*STITCH, *update, "--dir", str(inst)], install_old, inst,
                    cwd=REPO_ROOT)
        if variant == "stitch" and "floor" in tools:  # the design's floor (floor.py)
            inst = out / "floor"
            run = Run("floor of the design (floor.py)", publish_s=stitch_publish,
                      note="no plan, journal or state: see tests/bench/compare/floor.py")

            def install_old_f(inst: Path = inst, variant: str = variant) -> None:
                fresh(inst)
                subprocess.run([*STITCH, "update", "--url", f"{base}/{variant}-old", "--dir",
                                str(inst), "--progress", "none", *trust], cwd=REPO_ROOT,
                               check=True, stderr=subprocess.DEVNULL)
            measure(run, [sys.executable, "-m", "tests.bench.compare.floor",
                          f"{base}/{variant}", str(inst), f"{key}.pub"], install_old_f, inst,
                    cwd=REPO_ROOT)
        if variant == "stitch-d" and "stitch-d1" in tools:  # files one after the other
            inst = out / "stitch-d1"
            run = Run(f"{label}, --connections 1", publish_s=stitch_publish)

            def install_old1(inst: Path = inst, variant: str = variant) -> None:
                fresh(inst)
                subprocess.run([*STITCH, "update", "--url", f"{base}/{variant}-old", "--dir",
                                str(inst), "--progress", "none", *trust], cwd=REPO_ROOT,
                               check=True, stderr=subprocess.DEVNULL)
            measure(run, [*STITCH, *update, "--connections", "1", "--dir", str(inst)],
                    install_old1, inst, cwd=REPO_ROOT)
        if variant == "stitch" and "stitch-cold" in tools:
            inst = out / "stitch-cold"
            run = Run("stitch, cold", publish_s=stitch_publish,
                      note="old files, no .stitch state")

            def copy_old(inst: Path = inst) -> None:
                fresh(inst)
                copy_tree(pair.old, inst)
            measure(run, [*STITCH, *update, "--dir", str(inst)], copy_old, inst,
                    cwd=REPO_ROOT)

    # ---- zsync: one .zsync per file; the seed is the old file at the same path, or, for a
    # file with no such old file, every old file that is gone from the new release (what a
    # rename-aware wrapper would pass).
    if "zsync" in tools:
        zroot = www / "zsync"
        link_tree(pair.new, zroot)
        mk = []
        for rel in new_files:
            f = zroot / rel
            mk.append(shlex.join(["zsyncmake", "-Z", "-o", f"{f}.zsync", "-u", quote(f.name),
                                  str(f)]))
        script = work / "zsyncmake.sh"
        script.write_text("set -e\n" + "\n".join(mk) + "\n")
        t = time.perf_counter()
        subprocess.run(["sh", str(script)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        zpub = time.perf_counter() - t
        zout = out / "zsync"
        gone = [p for rel, p in old_files.items() if rel not in new_files]
        lines = ["set -e"]
        dirs = sorted({str((zout / rel).parent) for rel in new_files})
        lines.append(shlex.join(["mkdir", "-p", *dirs]))
        for rel in new_files:
            seeds = [old_files[rel]] if rel in old_files else gone
            cmd = ["zsync", "-q"]
            for s in seeds:
                cmd += ["-i", str(s)]
            cmd += ["-o", str(zout / rel), f"{base}/zsync/{quote(rel)}.zsync"]
            lines.append(shlex.join(cmd))
        zscript = work / "zsync.sh"
        zscript.write_text("\n".join(lines) + "\n")
        ztmp = work / "zsync-cwd"
        ztmp.mkdir(exist_ok=True)
        run = Run("zsync", publish_s=zpub,
                  note=f"{len(new_files)} zsync process(es)" if len(new_files) > 1 else "")
        measure(run, ["sh", str(zscript)], lambda: fresh(zout), zout, cwd=ztmp)

    if "zsync-tar" in tools:  # zsync on one tar of the tree (tests/bench/compare/many.py)
        from tests.bench.compare import many
        measure(*many.zsync_tar(pair, www, out, work, base), cwd=work)  # type: ignore[arg-type]
    if "zsync-tar-sync" in tools:  # the same, then a sync of the file system (context)
        from tests.bench.compare import many
        measure(*many.zsync_tar(pair, www, out, work, base, durable=True),  # type: ignore[arg-type]
                cwd=work)

    # ---- casync: folder -> catar index (.caidx) seeded with the old folder; a single file ->
    # blob index (.caibx) seeded with the old file.
    if "casync" in tools:
        croot = www / "casync"
        croot.mkdir()
        store = croot / "default.castr"
        single = pair.kind == "file"
        (only,) = new_files.values() if single else (None,)
        (old_only,) = old_files.values() if single else (None,)
        idx = croot / ("new.caibx" if single else "new.caidx")
        t = time.perf_counter()
        subprocess.run(["casync", "make", f"--store={store}", str(idx),
                        str(only if single else pair.new)], check=True,
                       stdout=subprocess.DEVNULL)
        cpub = time.perf_counter() - t
        cout = out / "casync"
        target = cout / next(iter(new_files)) if single else cout
        seed = old_only if single else pair.old
        cmd = ["casync", "extract", f"--store={base}/casync/default.castr", f"--seed={seed}",
               f"{base}/casync/{idx.name}", str(target)]

        def prep_casync() -> None:
            fresh(cout)
            if single:
                cout.mkdir()
        run = Run("casync", publish_s=cpub)
        measure(run, cmd, prep_casync, cout)

    # Tools take turns within each repetition, so a burst of load elsewhere on the machine
    # hits them alike rather than one tool's runs. Round -1 is a warm-up, not counted: the
    # pair's setup (publishing, copies, the zstd figures) leaves the kernel writing back and
    # reclaiming memory for a while, which slowed the first round of every tool.
    for i in range(-1, repeat):
        for run, cmd, prepare, result, cwd in specs:
            prepare()
            # Every run starts with nothing dirty in the page cache: stitch fsyncs what it
            # writes (crash safety), and must not pay for flushing the previous run's or
            # the preparation's writes (zsync and casync never sync, so it costs them nothing).
            os.sync()
            nginx.mark()
            try:
                wall, rss = timed(cmd, logs / f"{run.tool}.log", cwd=cwd)
            except RuntimeError as e:
                say(f"  {run.tool} FAILED: {e}")
                log_tail = (logs / f"{run.tool}.log").read_text(errors="replace")[-600:]
                say(log_tail)
                run.check = "FAILED"
                wall, rss = float("nan"), 0
            sent, reqs, lines = nginx.since_mark()
            if i < 0:
                continue
            run.walls.append(wall)
            run.rss_kb = max(run.rss_kb, rss)
            if i == 0:
                run.sent, run.requests = sent, reqs
                run.meta = sum(int(x.split()[0]) for x in lines
                               if x.split()[-2].endswith(META_SUFFIXES))
                if run.check != "FAILED":
                    run.check = check_tree(expected, result)
    # Optional: one more run of each stitch variant under pyinstrument (not timed).
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "-" for c in pair.name.lower()).strip("-")
        for run, cmd, prepare, _result, cwd in specs:
            if not run.tool.startswith("stitch"):
                continue
            tool = "".join(c if c.isalnum() else "-" for c in run.tool.lower())
            prepare()
            out_file = profile_dir / f"{slug}--{tool}.txt"
            # main(), not the CLI's entry(): that leaves with os._exit, before pyinstrument
            # could write its report.
            assert cmd[1:3] == ["-m", "app.cli"]
            script = f"import sys; from app.cli import main; sys.exit(main({cmd[3:]!r}))"
            subprocess.run([sys.executable, "-m", "pyinstrument", "-o", str(out_file),
                            "-c", script], cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            say(f"  profile: {out_file}")

    for run in runs:
        say(f"  {run.tool}: sent {run.sent:,} ({run.meta:,} index/manifest) in "
            f"{run.requests} requests, wall {' '.join(f'{w:.2f}' for w in run.walls)} s, "
            f"RSS {run.rss_kb / 1024:.0f} MB, {run.check}")

    return PairResult(pair, len(new_files), changed, full, zstd_full, patch, level_txt, runs)


# ------------------------------------------------------------------------------ the table

def mb(n: int) -> str:
    return f"{n:,}"


def tables(results: list[PairResult]) -> str:
    out = ["| pair | files (changed) | full size | zstd -3 of new | "
           "zstd --patch-from | level |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        out.append(f"| {r.pair.name} | {r.files} ({r.changed}) | {mb(r.full)} | "
                   f"{mb(r.zstd_full)} | {mb(r.patch)} | {r.patch_level} |")
    out += ["", "| pair | tool | server sent (bytes) | of which indexes + manifest | × patch "
            "| requests | wall s | peak RSS MB | publish s | result |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        for run in r.runs:
            if len(run.walls) > 1:
                wall = f"{run.wall:.2f} ({min(run.walls):.2f}–{max(run.walls):.2f})"
            else:
                wall = f"{run.wall:.2f}"
            pub = f"{run.publish_s:.1f}" if run.publish_s is not None else ""
            out.append(f"| {r.pair.name} | {run.tool} | {mb(run.sent)} | {mb(run.meta)} | "
                       f"{run.sent / max(r.patch, 1):.1f} | {run.requests} | {wall} | "
                       f"{run.rss_kb / 1024:.0f} | {pub} | {run.check} |")
    return "\n".join(out)
