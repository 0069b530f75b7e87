"""Start a real Switchboard server for a test, or use SB_PORT when a driver already started one."""
import os
import re
import shutil
import subprocess
import tempfile
import threading
from typing import Optional, Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class Server:
    def __init__(self) -> None:
        self.proc: Optional["subprocess.Popen[str]"] = None
        self.dir = ""
        self.host = "127.0.0.1"
        self.port = 0

    def start(self) -> Tuple[str, int]:
        if os.environ.get("SB_PORT"):
            self.port = int(os.environ["SB_PORT"])
            return self.host, self.port
        self.dir = tempfile.mkdtemp(prefix="sb-py-")
        self.proc = subprocess.Popen(
            ["node", os.path.join(ROOT, "bin", "switchboard.js"), "serve", "--port", "0", "--http-port", "-1",
             "--data-dir", self.dir, "--log-level", "warn", "--ack-timeout", "1000"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = re.match(r"native\s+listening on ([\d.]+):(\d+)", line)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                break
        else:
            raise RuntimeError("the server did not start")
        out = self.proc.stdout
        threading.Thread(target=lambda: [None for _ in out], daemon=True).start()  # keep the pipe drained
        return self.host, self.port

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
