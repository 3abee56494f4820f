#!/usr/bin/env bash
# Crash safety of the server binary given as $1, on a temporary SQLite file:
#
#  1. SIGKILL while four clients create todos: after a restart on the same
#     database, every todo that was answered 201 is there, with its title.
#  2. SIGTERM while clients log in, create and list todos: every request
#     whose connection was open before the signal gets an HTTP answer (no
#     reset), new connections are refused after it, and the process exits 0
#     within the grace period.
#
# Talks only to 127.0.0.1, bounded in time; needs python3 (standard library).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH/TO/todo-api" >&2
    exit 2
fi
BINARY=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

exec python3 - "$BINARY" <<'PYTHON'
import base64, http.client, json, os, re, shutil, signal, subprocess, sys
import tempfile, threading, time, urllib.parse

BINARY = sys.argv[1]
WORKDIR = tempfile.mkdtemp(prefix="todo-api-crash-")
DATABASE = os.path.join(WORKDIR, "crash.db")
GRACE = 5  # --shutdown-grace, seconds
PASSWORD = "crash test passphrase"
ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "RUST_LOG": "info",
    "TODO_API_JWT_SECRET": base64.b64encode(os.urandom(48)).decode(),
    "DATABASE_URL": "sqlite:" + DATABASE,
}
servers = []


def fail(message):
    print("crash.sh: FAIL: " + message, flush=True)
    sys.exit(1)


class Server:
    def __init__(self, name):
        self.log_path = os.path.join(WORKDIR, name + ".log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [BINARY, "serve", "--bind", "127.0.0.1:0", "--auth-rate-limit", "0",
             "--shutdown-grace", str(GRACE)],
            env=ENV, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        servers.append(self)
        deadline = time.monotonic() + 30
        while True:
            text = open(self.log_path, encoding="utf-8", errors="replace").read()
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
            if found:
                self.port = int(found.group(1))
                return
            if self.process.poll() is not None:
                fail(f"{name}: the server exited with {self.process.returncode}:\n{text}")
            if time.monotonic() > deadline:
                fail(f"{name}: the server did not start:\n{text}")
            time.sleep(0.05)

    def text(self):
        return open(self.log_path, encoding="utf-8", errors="replace").read()


def call(port, method, path, body=None, token=None, form=None, timeout=20):
    """One request on a fresh connection: (status, parsed body, when the
    connection was established). A failure to connect raises OSError; a
    failure after it gives a description instead of the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {}
    payload = None
    if token:
        headers["Authorization"] = "Bearer " + token
    if body is not None:
        headers["Content-Type"] = "application/json"
        payload = json.dumps(body)
    if form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        payload = urllib.parse.urlencode(form)
    try:
        connection.connect()
        connected = time.monotonic()
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            return f"{type(error).__name__}: {error}", None, connected
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return response.status, parsed, connected
    finally:
        connection.close()


def login(port, username):
    status, body, _ = call(port, "POST", "/auth/token", form={
        "grant_type": "password", "username": username, "password": PASSWORD})
    if status != 200:
        fail(f"login as {username}: {status} {body}")
    return body["access_token"]


def main():
    # ---------------------------------------------------------- 1. SIGKILL
    server = Server("first")
    port = server.port
    status, body, _ = call(port, "POST", "/auth/register",
                           body={"username": "crash", "password": PASSWORD, "name": "Crash"})
    if status != 201:
        fail(f"register: {status} {body}")
    token = login(port, "crash")

    acknowledged = []  # (id, title) of every 201
    lock = threading.Lock()
    stop = threading.Event()

    def create(worker):
        n = 0
        while not stop.is_set():
            n += 1
            title = f"w{worker}-n{n}-{os.urandom(4).hex()}"
            try:
                status, body, _ = call(port, "POST", "/api/todos", token=token,
                                       body={"title": title, "description": "d" * (n % 50)})
            except OSError:
                return  # the server is gone
            if status == 201:
                if body.get("title") != title:
                    fail(f"201 with the wrong title: {body}")
                with lock:
                    acknowledged.append((body["id"], title))

    workers = [threading.Thread(target=create, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    # Kill once writes are flowing: after 1.5 s and 200 creations (or 20 s).
    started = time.monotonic()
    while time.monotonic() - started < 20:
        time.sleep(0.1)
        with lock:
            if len(acknowledged) >= 200 and time.monotonic() - started > 1.5:
                break
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    stop.set()
    for w in workers:
        w.join(timeout=30)
    if not acknowledged:
        fail("no todo was created before the kill:\n" + server.text())
    print(f"crash.sh: SIGKILL after {len(acknowledged)} acknowledged creations", flush=True)

    server = Server("restarted")
    port = server.port
    token = login(port, "crash")
    missing = []
    for todo_id, title in acknowledged:
        status, body, _ = call(port, "GET", f"/api/todos/{todo_id}", token=token)
        if status != 200 or body.get("title") != title:
            missing.append((todo_id, title, status, body))
    if missing:
        fail(f"{len(missing)} acknowledged todos lost or changed, e.g. {missing[:3]}")
    print(f"crash.sh: all {len(acknowledged)} acknowledged todos survived the crash", flush=True)

    # ---------------------------------------------------------- 2. SIGTERM
    results = []  # (connected at, status or what went wrong)
    stop.clear()

    def load(worker):
        n = 0
        while not stop.is_set():
            n += 1
            kind = n % 4
            try:
                if kind == 0:
                    outcome, _, connected = call(port, "POST", "/auth/token", form={
                        "grant_type": "password", "username": "crash", "password": PASSWORD})
                elif kind == 1:
                    outcome, _, connected = call(port, "GET", "/api/todos?limit=1000",
                                                 token=token)
                else:
                    outcome, _, connected = call(port, "POST", "/api/todos", token=token,
                                                 body={"title": f"t{worker}-{n}"})
            except OSError:
                return  # could not connect: the server has stopped listening
            with lock:
                results.append((connected, outcome))

    workers = [threading.Thread(target=load, args=(w,)) for w in range(6)]
    for w in workers:
        w.start()
    time.sleep(1.5)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=GRACE + 5)
    except subprocess.TimeoutExpired:
        fail("the server did not exit within the grace period after SIGTERM")
    stopped = time.monotonic() - signalled
    stop.set()
    for w in workers:
        w.join(timeout=30)
    if code != 0:
        fail(f"the server exited with {code} after SIGTERM:\n{server.text()}")
    if stopped > GRACE + 1:
        fail(f"the server took {stopped:.1f} s to stop (grace {GRACE} s)")
    answered = lambda r: isinstance(r[1], int) and 100 <= r[1] <= 599
    before = [r for r in results if r[0] < signalled]
    after = [r for r in results if r[0] >= signalled]
    broken = [r for r in before if not answered(r)]
    if broken:
        fail(f"{len(broken)} requests connected before SIGTERM got no valid answer, "
             f"e.g. {broken[:5]}")
    if len(before) < 20:
        fail(f"too little load before the signal ({len(before)} requests)")
    statuses = sorted({r[1] for r in before})
    late = sum(1 for r in after if not answered(r))
    print(f"crash.sh: SIGTERM under load: all {len(before)} requests connected before "
          f"the signal were answered ({statuses}); {len(after)} connected after it "
          f"({late} of them cut off); exit 0 after {stopped:.2f} s", flush=True)

    status_after = None
    try:
        status_after, _, _ = call(port, "GET", "/healthz", timeout=2)
    except OSError:
        pass
    if status_after is not None:
        fail("the port still answers after the server exited")
    print("crash.sh: ok", flush=True)


try:
    main()
finally:
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    shutil.rmtree(WORKDIR, ignore_errors=True)
PYTHON
