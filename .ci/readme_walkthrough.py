"""Runs the README's walkthrough as a reader would, and fails on any
difference between what a command prints and what the README shows.

Usage: python3 .ci/readme_walkthrough.py PATH-TO-todo-api-BINARY [README]

Every ```sh block of the "Walkthrough" section runs in order, in one bash
session (so the helpers and variables a block defines hold for the next),
against a fresh `serve --demo` on a temporary database. A line starting
with "$ " is a command (continued by lines after a trailing backslash);
the lines after it, up to the next command, are what it must print. A
block without "$ " runs as it is and must print nothing.

What may differ from run to run is matched, not compared:
- "…" stands for any text within a line; a line that is only "…" for any
  number of lines;
- RFC 3339 timestamps, request ids (UUIDs) and the HTTP Date header's value
  match any value of their kind;
- "  # comment" after an expected line is the README's remark, not output.
The server listens on a free port, which replaces the README's
localhost:8000 in the commands.
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SECTION = "## Walkthrough"
README_PORT = "localhost:8000"

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
HTTP_DATE = r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"
VARYING = re.compile(f"({TIMESTAMP}|{UUID}|{HTTP_DATE}|…)")
REMARK = re.compile(r"\s{2,}#.*$")


class Step:
    """One command of the walkthrough and what it must print."""

    def __init__(self, line_no, command):
        self.line_no = line_no
        self.command = command
        self.expected = []


def walkthrough_blocks(readme):
    """The (first line number, lines) of each sh block of the section."""
    lines = readme.split("\n")
    start = lines.index(SECTION)
    end = next(
        i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")
    )
    blocks, current, first = [], None, 0
    for number in range(start, end):
        line = lines[number]
        if current is None and line.strip() == "```sh":
            current, first = [], number + 2
        elif current is not None and line.strip() == "```":
            blocks.append((first, current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def steps_of(first, lines):
    """A block's commands with their expected output."""
    if not any(line.startswith("$ ") for line in lines):
        return [Step(first, "\n".join(lines))]
    steps, continued = [], False
    for offset, line in enumerate(lines):
        if continued:
            steps[-1].command += "\n" + line
        elif line.startswith("$ "):
            steps.append(Step(first + offset, line[2:]))
        elif not steps:
            sys.exit(f"README line {first + offset}: output before any command")
        else:
            steps[-1].expected.append(REMARK.sub("", line))
        continued = (continued or line.startswith("$ ")) and line.endswith("\\")
    for step in steps:
        while step.expected and not step.expected[-1].strip():
            step.expected.pop()
    return steps


def pattern_of(expected):
    """The regular expression that output matching `expected` fits."""
    parts = []
    for line in expected:
        if line.strip() == "…":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces = VARYING.split(line)
        regex = ""
        for index, piece in enumerate(pieces):
            if index % 2 == 0:
                regex += re.escape(piece)
            elif piece == "…":
                regex += r"[^\n]*?"
            else:
                regex += f"(?:{TIMESTAMP}|{UUID}|{HTTP_DATE})"
        parts.append(regex + r"\n")
    return re.compile("".join(parts))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, work, port):
    log = open(os.path.join(work, "server.log"), "w")
    env = dict(os.environ, RUST_LOG="warn")
    env.pop("TODO_API_JWT_SECRET", None)
    server = subprocess.Popen(
        [binary, "serve", "--demo", "--bind", f"127.0.0.1:{port}",
         "--database-url", f"sqlite:{os.path.join(work, 'readme.db')}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.1)
    server.kill()
    sys.exit(f"the demo server did not start; its log:\n{open(log.name).read()}")


def run(steps, work, port):
    """Runs every step in one bash session; returns each step's output."""
    script = ["set -u"]
    for index, step in enumerate(steps):
        command = step.command.replace(README_PORT, f"localhost:{port}")
        script.append(f"{{\n{command}\n}} > {work}/out.{index} 2>&1")
    path = os.path.join(work, "walkthrough.sh")
    with open(path, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["bash", path], cwd=work, timeout=300, check=False)
    outputs = []
    for index in range(len(steps)):
        with open(f"{work}/out.{index}", encoding="utf-8") as f:
            text = f.read().replace("\r\n", "\n")
        outputs.append(text if text.endswith("\n") or not text else text + "\n")
    return outputs


def main():
    binary = os.path.abspath(sys.argv[1])
    readme_path = sys.argv[2] if len(sys.argv) > 2 else "README.md"
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    steps = [s for first, lines in walkthrough_blocks(readme) for s in steps_of(first, lines)]
    with tempfile.TemporaryDirectory() as work:
        port = free_port()
        server = start_server(binary, work, port)
        try:
            outputs = run(steps, work, port)
        finally:
            server.terminate()
            server.wait(timeout=15)
    failures = 0
    for step, output in zip(steps, outputs):
        expected = "".join(line + "\n" for line in step.expected)
        if not pattern_of(step.expected).fullmatch(output):
            failures += 1
            first_line = step.command.split("\n")[0]
            print(f"{readme_path}:{step.line_no}: $ {first_line}")
            print(f"  the README shows:\n{indent(expected)}  it printed:\n{indent(output)}")
    print(f"{len(steps)} walkthrough commands run, {failures} printed something else")
    sys.exit(1 if failures else 0)


def indent(text):
    return "".join(f"    {line}\n" for line in (text.rstrip("\n").split("\n") if text else ["(nothing)"]))


if __name__ == "__main__":
    main()
