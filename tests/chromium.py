"""A headless Chromium for the tests of HTML pages, driven through its DevTools protocol over a pipe
(--remote-debugging-pipe: JSON messages separated by NUL bytes on file descriptors 3 and 4), so no websocket library
is needed; and the check of a page's own self-test (no console error, no uncaught exception, no network request).
Without chromium the browser tests are skipped, except on CI (CI=true), where they fail."""
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
ON_CI = os.environ.get("CI", "").lower() == "true"


def need_chromium():
    if CHROMIUM is None:
        if ON_CI:
            pytest.fail("chromium is not installed (tools/install.sh installs it); required on CI")
        pytest.skip("chromium is not installed (tools/install.sh installs it)")


# ---------------------------------------------------------------------------------------------------------------
# A minimal DevTools-protocol client over --remote-debugging-pipe

class PageRun:
    """What happened while a page loaded and ran: console messages, uncaught exceptions, log entries, requests."""

    def __init__(self):
        self.console, self.exceptions, self.log_entries, self.requests = [], [], [], []
        self.selftest = None

    @property
    def errors(self):
        """Console errors/assertions, uncaught exceptions and error log entries, one text each."""
        out = [f"console.{t}: {text}" for t, text in self.console if t in ("error", "assert")]
        out += [f"uncaught: {text}" for text in self.exceptions]
        out += [f"log {level}: {text}" for level, text in self.log_entries if level == "error"]
        return out


class Chromium:
    """A headless Chromium driven over the DevTools pipe. Use as a context manager."""

    def __init__(self, timeout=60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="memvis_report_chromium.")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # the browser reads commands on its fd 3 and writes replies on fd 4: hand it our pipe ends at fds >= 10
        # (so that the 3<& / 4>& redirections cannot overwrite one another) and let bash place them
        child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child_r, from_child_w))
        for fd in (to_child_r, from_child_w):
            os.close(fd)
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                f"--user-data-dir={self.profile}", "about:blank"]
        shell = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        self.proc = subprocess.Popen(["bash", "-c", shell] + args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     pass_fds=(child_in, child_out))
        os.close(child_in)
        os.close(child_out)
        self._messages = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read_loop, daemon=True).start()
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # keep the stderr pipe drained

    def _read_loop(self):
        buffer = b""
        with os.fdopen(self._from_child, "rb", buffering=0) as f:
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    self._messages.put(None)
                    return
                buffer += chunk
                *complete, buffer = buffer.split(b"\0")
                for message in complete:
                    self._messages.put(json.loads(message))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001  (the browser may be gone already)
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method, params=None, session=None, events=None):
        """Sends a command and waits for its reply (events arriving meanwhile go to ``events(message)``)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.time() + self.timeout
        while True:
            reply = self._wait_message(deadline, method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if events and "method" in reply:
                events(reply)

    def _wait_message(self, deadline, what):
        try:
            message = self._messages.get(timeout=max(0.0, deadline - time.time()))
        except queue.Empty:
            raise TimeoutError(f"chromium: no answer to {what} within {self.timeout} s") from None
        if message is None:
            raise RuntimeError(f"chromium exited while waiting for {what} (status {self.proc.poll()})")
        return message

    def run_page(self, url, done_js, wait=30.0):
        """Opens ``url`` in a new tab, waits until the expression ``done_js`` is truthy (polled) or ``wait`` s pass,
        and returns a PageRun with what the page logged and the final value of ``done_js`` in .selftest."""
        run = PageRun()

        def on_event(message):
            method, params = message["method"], message.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                run.console.append((params.get("type"), text))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                exc = details.get("exception", {})
                run.exceptions.append(f"{details.get('text', '')} {exc.get('description', '')} "
                                      f"(line {details.get('lineNumber')})")
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                run.log_entries.append((entry.get("level"), f"{entry.get('text')} {entry.get('url', '')}"))
            elif method == "Network.requestWillBeSent":
                run.requests.append(params.get("request", {}).get("url", ""))

        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable", session=session, events=on_event)
        self.send("Page.navigate", {"url": url}, session=session, events=on_event)
        deadline = time.time() + wait
        while True:
            value = self.send("Runtime.evaluate", {"expression": done_js, "returnByValue": True},
                              session=session, events=on_event).get("result", {}).get("value")
            if value or run.exceptions or time.time() > deadline:  # a page that threw may never finish
                break
            time.sleep(0.1)
        self.send("Runtime.evaluate", {"expression": "0"}, session=session, events=on_event)  # flush events
        run.selftest = value
        self.send("Target.closeTarget", {"targetId": target}, events=on_event)
        return run


SELFTEST_JS = "document.getElementById('selftest-result') && document.getElementById('selftest-result').textContent"


def run_selftest(browser, html_path):
    """Opens html_path#selftest and returns the PageRun (selftest = text of #selftest-result)."""
    return browser.run_page("file://" + os.path.abspath(html_path) + "#selftest", SELFTEST_JS)


def assert_clean_run(run, html_path):
    """The checks every report page must pass: self-test ok, no console error or uncaught exception, and no request
    for anything but the page itself (self-contained)."""
    assert not run.errors, f"{html_path}: errors in the page:\n" + "\n".join(run.errors)
    assert run.selftest and run.selftest.startswith("ok"), f"{html_path}: self-test: {run.selftest!r}"
    page = "file://" + os.path.abspath(html_path)
    foreign = [u for u in run.requests if not u.startswith(page) and not u.startswith("data:")]
    assert not foreign, f"{html_path}: the page requested {foreign}"
