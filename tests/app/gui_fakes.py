"""Stand-ins and real-release helpers for the window tests (imported by conftest.py and
the tests; not a test module itself).

``FakeUpdater`` follows a ``Script`` so the window's states can be driven without the engine;
``Release`` publishes real releases with ``core.publisher.publish``; ``RunningServer`` serves them
with ``app.serve`` and can slow itself down so a test can act mid-download.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.engine.updater import CheckResult, Outcome, UpdatePlan, UpdaterConfig, UpdateResult
from core.progress import CancelToken, Phase, Progress, ProgressCallback

# --- a scripted engine ---------------------------------------------------------------------


def make_check(installed: str | None = "1.0", offered: str = "1.1", notes: str = "") -> CheckResult:
    return CheckResult(
        installed_version=installed,
        offered_version=offered,
        up_to_date=installed == offered,
        notes=notes,
        files_changed=2,
        files_removed=0,
        total_size=50_000_000,
        signed=True,
    )


def make_plan(
    check: CheckResult, download: int = 4_000_000, reused: int = 40_000_000, free: int = 10**12
) -> UpdatePlan:
    return UpdatePlan(
        check=check,
        bytes_to_download=download,
        bytes_reused=reused,
        bytes_needed=download + reused,
        disk_needed=download + reused,
        disk_free=free,
        requests_estimate=3,
    )


@dataclass
class Script:
    """What the fake engine does. ``gate``: the download waits on it (so a test can act
    mid-download); errors are raised from the named step, once each."""

    check: CheckResult = field(default_factory=make_check)
    plan: UpdatePlan | None = None
    check_error: BaseException | None = None
    apply_error: BaseException | None = None
    gate: threading.Event | None = None
    steps: int = 20
    calls: list[str] = field(default_factory=list)
    configs: list[UpdaterConfig] = field(default_factory=list)
    in_download: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.plan is None:
            self.plan = make_plan(self.check)


class FakeUpdater:
    def __init__(
        self, script: Script, config: UpdaterConfig, progress: ProgressCallback, cancel: CancelToken
    ) -> None:
        self.s = script
        self.progress = progress
        self.cancel = cancel
        script.configs.append(config)

    def check(self) -> CheckResult:
        self.s.calls.append("check")
        self.progress(Progress(Phase.CHECK, 0, 3))
        self.cancel.check()
        if self.s.check_error is not None:
            err, self.s.check_error = self.s.check_error, None
            raise err
        self.progress(Progress(Phase.CHECK, 3, 3, message="manifest verified"))
        return self.s.check

    def prepare(self) -> UpdatePlan:
        self.s.calls.append("prepare")
        assert self.s.plan is not None
        rest = self.s.plan.bytes_reused + self.s.plan.bytes_to_download
        self.progress(Progress(Phase.SCAN, 0, 100, current="data/big.pak",
                               overall_total=100 + rest))
        self.cancel.check()
        self.progress(Progress(Phase.SCAN, 100, 100, current="data/big.pak",
                               overall_done=100, overall_total=100 + rest))
        self.progress(Progress(Phase.PLAN, 1, 1, overall_done=100, overall_total=100 + rest,
                               download_total=self.s.plan.bytes_to_download))
        return self.s.plan

    def apply(self) -> UpdateResult:
        self.s.calls.append("apply")
        assert self.s.plan is not None
        plan = self.s.plan
        total = plan.bytes_to_download
        work = 100 + plan.bytes_reused + total  # read while scanning + copied + downloaded
        self.progress(
            Progress(
                Phase.REBUILD,
                plan.bytes_reused,
                plan.bytes_reused,
                bytes_local=plan.bytes_reused,
                current="data/big.pak",
                overall_done=100 + plan.bytes_reused,
                overall_total=work,
                download_total=total,
            )
        )
        for i in range(self.s.steps + 1):
            self.cancel.check()
            done = total * i // self.s.steps
            self.progress(
                Progress(
                    Phase.DOWNLOAD,
                    done,
                    total,
                    plan.bytes_reused,
                    done,
                    current="data/big.pak",
                    overall_done=100 + plan.bytes_reused + done,
                    overall_total=work,
                    download_done=done,
                    download_total=total,
                )
            )
            if i == self.s.steps // 2:
                self.s.in_download.set()
                if self.s.gate is not None:
                    while not self.s.gate.wait(0.02):
                        self.cancel.check()
            time.sleep(0.002)
        if self.s.apply_error is not None:
            err, self.s.apply_error = self.s.apply_error, None
            raise err
        self.progress(Progress(Phase.VERIFY, 10, 10, plan.bytes_reused, total))
        self.progress(Progress(Phase.INSTALL, 2, 2, plan.bytes_reused, total))
        self.progress(Progress(Phase.DONE, 1, 1, plan.bytes_reused, total))
        return UpdateResult(
            outcome=Outcome.UPDATED,
            from_version=plan.check.installed_version,
            to_version=plan.check.offered_version,
            bytes_downloaded=total,
            bytes_reused=plan.bytes_reused,
            files_changed=2,
            files_removed=0,
            requests=3,
        )

    def close(self) -> None:
        self.s.calls.append("close")


# --- real releases and a real server ---------------------------------------------------------


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


PLAY_SCRIPT = b"""\
import pathlib, sys
pathlib.Path(sys.argv[1]).write_text("played from " + str(pathlib.Path.cwd()))
"""


def release_files(version: str) -> dict[str, bytes]:
    """Game-like content: one large archive edited between versions, small text, a script.
    1.1 changes about 1.5 MB of the 12 MB archive and adds a 2 MB file."""
    rng = random.Random(1234)
    big = bytearray(rng.randbytes(12_000_000))
    files = {"readme.txt": f"Dungeon Crawl {version}\n".encode(), "play.py": PLAY_SCRIPT}
    if version != "1.0":
        edit = random.Random(99)
        for offset in (1_000_000, 5_000_000, 9_000_000):
            big[offset : offset + 500_000] = edit.randbytes(500_000)
        files["data/new.bin"] = edit.randbytes(2_000_000)
    files["data/big.pak"] = bytes(big)
    return files


@dataclass
class Release:
    """A repository folder and the releases published into it, signed with a fresh key."""

    repo: Path
    sources: dict[str, Path]  # version -> source folder
    key: object = None  # core.formats.signing.SecretKey, made on first publish

    @property
    def pubkey(self) -> str:
        """The minisign public key (base64) that signed the releases."""
        return self._key().public_key.b64()

    def _key(self):  # type: ignore[no-untyped-def]
        from core.formats import signing

        if self.key is None:
            self.key = signing.load_secret_key(signing.generate_keypair()[0], None)
        return self.key

    def publish(self, version: str) -> None:
        from core.publisher.publish import publish

        src = self.repo.parent / f"src-{version}"
        write_tree(src, release_files(version))
        self.sources[version] = src
        publish(
            src,
            self.repo,
            version=version,
            channel="stable",
            product="dcrawl",
            sign_key=self._key(),
            notes=f"## {version}\n\n- Faster loading\n- New level",
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    """A real ``stitch serve`` in a thread. ``delay`` slows each block it sends, so a test
    can act mid-download without a huge release (the sleep happens in the server's handler
    thread, the client sees a slow link)."""

    def __init__(self, repo: Path, port: int = 0, delay: float = 0.0) -> None:
        from app import serve

        outer = self

        class SlowServer(serve.StitchServer):
            def get_request(self):  # type: ignore[no-untyped-def]
                # Small send buffers (unless ``sndbuf`` is None: the system's, which grow
                # to MBs), so a client that stops reading soon stops the server's sending
                # instead of a few MB vanishing into loopback buffers.
                conn, addr = super().get_request()
                if outer.sndbuf is not None:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, outer.sndbuf)
                return conn, addr

            def count(self, sent: int, requests: int = 0) -> None:
                super().count(sent, requests)
                if outer.delay and sent:
                    time.sleep(outer.delay)

        self.delay = delay
        self.sndbuf: int | None = 32 * 1024
        self.server = SlowServer(("127.0.0.1", port), repo, quiet=True)
        self.url = self.server.url
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def bytes_sent(self) -> int:
        return self.server.bytes_sent

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)
