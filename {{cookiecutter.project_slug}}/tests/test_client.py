"""The command-line client (``python -m chat.client``) as a real user runs it: a process fed
on standard input, against real server and worker processes, talking with a browser user
on another server process -- through a server killed and restarted under it.
"""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from chat.models import Message
from support.processes import PROJECT_DIR, child_env, start_web, start_worker, wait_for
from tests.wsclient import Client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class CommandLine:
    """``python -m chat.client ROOM``, its output collected line by line on a thread."""

    def __init__(self, room: str, url: str, api_key: str):
        self.lines: list[str] = []
        self.errors: list[str] = []
        env = {**os.environ, "CHAT_API_KEY": api_key, "CHAT_URL": url}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chat.client", room],
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.readers = [
            threading.Thread(target=self.collect, args=(self.process.stdout, self.lines)),
            threading.Thread(target=self.collect, args=(self.process.stderr, self.errors)),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def collect(stream, into: list[str]):
        for line in stream:
            into.append(line.rstrip("\n"))

    def type(self, line: str):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def printed(self, author: str, body: str) -> bool:
        return any(line.endswith(f"] {author}: {body}") for line in self.lines)

    def wait_printed(self, author: str, body: str, timeout: float = 30):
        wait_for(
            lambda: self.printed(author, body),
            timeout,
            f"the client to print {author}: {body}\nstdout: {self.lines}\nstderr: {self.errors}",
        )

    def finish(self, timeout: float = 60) -> int:
        """End of input: the client exits once every line is accepted."""
        self.process.stdin.close()
        try:
            return self.process.wait(timeout)
        finally:
            self.stop()

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for reader in self.readers:
            reader.join(10)
        self.process.stdout.close()
        self.process.stderr.close()


def test_the_command_line_client_round_trip(make_user, persist_queue, tmp_path):
    """Ann runs the client with an API key against server A; Bob uses a browser's socket
    on server B. They talk; A dies; while it is down Ann types a line and Bob posts one;
    A comes back on its port; the client reconnects with a new ticket, resends Ann's line
    with its id, and catches up on Bob's. Every message is stored exactly once."""
    ann, bob = make_user(), make_user()
    key = subprocess.run(
        [sys.executable, "manage.py", "apikey", ann.user.username],
        cwd=PROJECT_DIR,
        env={**os.environ, **child_env()},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = child_env()
    worker = start_worker(env, tmp_path / "worker.log")
    web_a, port_a = start_web(env, tmp_path / "web-a.log")
    web_b, port_b = start_web(env, tmp_path / "web-b.log")
    room = f"cli-{uuid.uuid4().hex[:8]}"
    cli = CommandLine(room, f"http://127.0.0.1:{port_a}", key)
    bobs_socket = Client(f"ws://127.0.0.1:{port_b}", bob, room)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(bobs_socket.__aenter__())
        wait_for(lambda: any("connected" in e for e in cli.errors), 30, "the client to connect")

        cli.type("hello from the command line")
        loop.run_until_complete(
            bobs_socket.wait_until(
                lambda frames: any(f.get("body") == "hello from the command line" for f in frames)
            )
        )
        cli.wait_printed(ann.user.username, "hello from the command line")
        loop.run_until_complete(bobs_socket.send("hello, command line"))
        cli.wait_printed(bob.user.username, "hello, command line")

        web_a.stop(signal.SIGKILL)
        cli.type("typed while the server was away")
        loop.run_until_complete(bobs_socket.send("posted while the client was away"))
        web_a, _ = start_web(env, tmp_path / "web-a-again.log", port=port_a)

        cli.wait_printed(bob.user.username, "posted while the client was away")  # caught up
        loop.run_until_complete(
            bobs_socket.wait_until(
                lambda frames: any(
                    f.get("body") == "typed while the server was away" for f in frames
                )
            )
        )
        assert cli.finish() == 0, cli.errors
        assert sum("connected to" in line for line in cli.errors) >= 2  # it reconnected
        bodies = [line.split(": ", 1)[1] for line in cli.lines]
        assert len(bodies) == len(set(bodies)), f"printed twice: {cli.lines}"

        expected = {
            "hello from the command line",
            "hello, command line",
            "typed while the server was away",
            "posted while the client was away",
        }
        wait_for(lambda: Message.objects.filter(room=room).count() >= len(expected), 60, "storage")
        stored = list(Message.objects.filter(room=room).values_list("body", flat=True))
        assert sorted(stored) == sorted(expected)  # each exactly once
    finally:
        cli.stop()
        loop.run_until_complete(bobs_socket.__aexit__())
        loop.run_until_complete(asyncio.gather(bobs_socket.reader, return_exceptions=True))
        loop.close()
        for process in (web_a, web_b, worker):
            process.stop()
