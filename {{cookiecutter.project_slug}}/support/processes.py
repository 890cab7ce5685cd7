"""Start the project's real processes (from the Procfile) for end-to-end tests and the benchmark.

Nothing here sleeps to synchronise: every wait polls a condition until a deadline, and a
process that fails to come up is reported with the end of its log.
"""

import configparser
import contextlib
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def sampling(sample, interval: float = 0.0):
    """Call ``sample()`` over and over on a thread for as long as the block runs.

    For figures a scenario must never exceed (connections, memory): the sampler watches
    while the test drives the load, and has stopped before the test asserts on what it saw.
    """
    stop = threading.Event()

    def run():
        while not stop.is_set():
            sample()
            stop.wait(interval)

    sampler = threading.Thread(target=run, name="sampler")
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()


def die_with_parent():
    """In the child, before exec: the kernel stops it if the test run dies first (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refusing_port() -> tuple[socket.socket, int]:
    """A port that refuses connections for as long as the returned socket stays open: bound,
    never listening, so that no server started later can take it (a port from free_port()
    can be handed out again)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """A process's resident memory (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def tcp_connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to ``port`` (Linux), counted from
    outside as an operator would: the process's sockets in /proc, matched against the
    kernel's TCP table."""
    return len(tcp_local_ports(pid, port))


def tcp_local_ports(pid: int, port: int) -> set[int]:
    """The local ports of process ``pid``'s established TCP connections to ``port``: how a
    server that lists its clients by address (Redis's ``CLIENT LIST``) names them."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    # A set, not a count of lines: the kernel lists the table a page per read, and a table
    # that changes meanwhile can list a connection twice.
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local_port = int(fields[1].split(":")[1], 16)
                remote_port, state, inode = int(fields[2].split(":")[1], 16), fields[3], fields[9]
                if remote_port == port and state == "01" and inode in inodes:
                    ports.add(local_port)
    return ports


def procfile_command(name: str) -> str:
    for line in (PROJECT_DIR / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise KeyError(f"No {name!r} line in the Procfile")


def database_url(settings_dict: dict) -> str:
    user = settings_dict["USER"] or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else ""
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


# For a process that streams faster than people type (fault tests, floods): the per-socket
# rate limit and the per-user budget out of the way (chat/ratelimit.py, chat/user_budget.py).
NO_RATE_LIMITS = {
    "CHAT_RATE_LIMIT": "100000",
    "CHAT_RATE_BURST": "100000",
    "CHAT_USER_MESSAGES_PER_SECOND": "100000",
    "CHAT_USER_BYTES_PER_SECOND": str(2**30),
}


def child_env(**overrides: str) -> dict:
    """The environment of a process started here: the database and Redis this process
    uses now (the test database, the benchmark's), then ``overrides``."""
    from django.conf import settings
    from django.db import connection

    return {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        **overrides,
    }


class Process:
    """One Procfile process, run through a shell exactly as the Procfile line reads.

    ``command`` replaces the Procfile line (the benchmark starts other servers and
    applications the same way).
    """

    def __init__(
        self, name: str, env: dict, log_path: Path, extra_args: str = "", command: str = ""
    ):
        self.name = name
        self.log_path = log_path
        self.command = f"{command or procfile_command(name)} {extra_args}".strip()
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        env.pop("PROCESS_ROLE", None)  # each entry point declares its own role
        self.log = open(log_path, "w")  # noqa: SIM115 (closed in stop())
        self.popen = subprocess.Popen(
            ["bash", "-c", f"exec {self.command}"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait_until(self, condition, timeout: float, what: str):
        def check():
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode} while waiting for "
                    f"{what}:\n{self.tail()}"
                )
            return condition()

        try:
            return wait_for(check, timeout, f"{self.name}: {what}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.tail()}") from None

    def shut_down(self, timeout: float = 20):
        """SIGTERM to the main process alone, as a container runtime sends it: a Celery
        worker's warm shutdown, in which running tasks finish and are acknowledged. (``stop``
        signals the whole process group, as systemd does by default, and a prefork child
        dies of SIGTERM at once: a task that has committed but not yet reported back is
        handed back to the queue.) Then ``stop`` ends whatever is left."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        self.stop()

    def stop(self, sig=signal.SIGTERM, timeout: float = 20):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self.log.close()


def start_web(
    env: dict, log_path: Path, port: int | None = None, command: str = ""
) -> tuple[Process, int]:
    """Start the web process on ``port`` (a free one by default: pass the old one to restart).

    ``command`` replaces the Procfile's line (the benchmark starts other servers).
    """
    port = port or free_port()
    web = Process("web", {**env, "PORT": str(port)}, log_path, command=command)

    def accepting():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    web.wait_until(accepting, 30, f"port {port} to accept connections")
    return web, port


def start_worker(env: dict, log_path: Path, extra_args: str = "") -> Process:
    worker = Process("worker", env, log_path, extra_args)
    worker.wait_until(lambda: " ready." in worker.output(), 60, "the worker to be ready")
    return worker


class RedisServer:
    """A redis-server of the test's own, on a free port, persisting to ``directory`` (the
    append-only file), or, with ``appendfsync=None``, not at all (a restart starts empty).

    The fault tests stop and restart it; the shared Redis of the rest of the suite is never
    touched. ``appendfsync`` is the setting under test (docs/operations.md); ``options``
    are more of redis-server's (``--maxclients``, ``--rename-command``...).
    """

    def __init__(
        self, directory: Path, appendfsync: str | None = "everysec", options: tuple[str, ...] = ()
    ):
        self.directory = directory
        self.port = free_port()
        self.appendfsync = appendfsync
        self.options = options
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self):
        self.popen = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                *(
                    ["--appendonly", "yes", "--appendfsync", self.appendfsync]
                    if self.appendfsync
                    else ["--appendonly", "no"]
                ),
                "--logfile",
                str(self.directory / "redis.log"),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for(self.answers, 15, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        """SIGTERM: Redis's own clean shutdown. SIGKILL: a crash, nothing flushed."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(30)


class PostgresServer:
    """A PostgreSQL server of the test's own (``initdb`` in a fresh directory, a free port,
    trust authentication), from the machine's PostgreSQL server binaries (Debian's
    ``postgresql`` package).

    The fault tests stop it for real and start it again, the benchmark gives it a small
    ``max_connections`` (``server_settings``, passed as ``-c name=value``); the shared server
    is never touched. PostgreSQL refuses to run as root, so as root the server itself runs as
    the ``postgres`` user, from a directory of its own under the system's temporary directory.
    """

    def __init__(self, server_settings: dict[str, str] | None = None):
        self.server_settings = server_settings or {}
        self.bindir = server_binaries()
        if self.bindir is None:
            raise RuntimeError("No PostgreSQL server binaries: apt-get install postgresql")
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="pg-fault-"))
        self.data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def settings_dict(self, dbname: str) -> dict:
        """A ``DATABASES`` entry for one of its databases, as ``support.pgstat`` takes them."""
        return {
            "NAME": dbname,
            "HOST": "127.0.0.1",
            "PORT": self.port,
            "USER": "postgres",
            "PASSWORD": "",
        }

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self):
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {name}={value}" for name, value in self.server_settings.items())
        log = str(self.log)
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast"):
        """``fast``: every session ends, the server shuts down cleanly. ``immediate``: a crash."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self):
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class PgBouncer:
    """A pgbouncer of its own (Debian's ``pgbouncer``) on a free port, in front of ``server``
    (a ``DATABASES`` entry). pgbouncer refuses to run as root, so as root it runs as
    ``postgres``.

    With the project's own ``pgbouncer/pgbouncer.ini`` (``ini``): a project generated with
    pgbouncer runs its tests through it (``tests/pgbouncer.py``). Without: transaction mode
    and at most ``pool_size`` connections to the server, the benchmark's design (h) in any
    bake.
    """

    def __init__(self, server: dict, pool_size: int = 20, ini: Path | None = None):
        if not pgbouncer_binary():
            raise RuntimeError("No pgbouncer: apt-get install pgbouncer")
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.directory.chmod(0o755)
        self.log = self.directory / "pgbouncer.log"
        config = configparser.ConfigParser(delimiters=("=",), comment_prefixes=(";",))
        config.optionxform = str  # type: ignore[assignment,method-assign]
        if ini is None:
            (self.directory / "userlist.txt").write_text(f'"{server["USER"] or "postgres"}" ""\n')
            config.read_dict({"databases": {}, "pgbouncer": transaction_pool(pool_size)})
        else:
            config.read(ini)
            shutil.copy(ini.parent / "userlist.txt", self.directory)
        host, port = server["HOST"] or "127.0.0.1", server["PORT"] or 5432
        config["databases"]["*"] = f"host={host} port={port}"
        config["pgbouncer"].update(
            listen_addr="127.0.0.1",
            listen_port=str(self.port),
            unix_socket_dir="",
            auth_file=str(self.directory / "userlist.txt"),
            logfile=str(self.log),
            # support.pgstat counts each process's connections on its console.
            stats_users=server["USER"] or "postgres",
        )
        with open(self.directory / "pgbouncer.ini", "w") as file:
            config.write(file)
        command = ["pgbouncer", str(self.directory / "pgbouncer.ini")]
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            command[1:1] = ["-u", "postgres"]
        env = {**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin"}
        # It logs to its logfile; an unread pipe on stdout would fill up and stall it.
        self.popen = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for(self.listening, 15, f"pgbouncer on port {self.port}")

    def listening(self) -> bool:
        if self.popen.poll() is not None:
            raise RuntimeError(f"pgbouncer exited:\n{self.log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def stop(self):
        """Closes its server connections too, so the database it served can be dropped."""
        if self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(30)
        shutil.rmtree(self.directory, ignore_errors=True)


def transaction_pool(pool_size: int) -> dict[str, str]:
    """pgbouncer's settings for the benchmark's design (h): transaction pooling, at most
    ``pool_size`` connections to the server, trusting local clients."""
    return {
        "auth_type": "trust",
        "pool_mode": "transaction",
        "default_pool_size": str(pool_size),
        "max_db_connections": str(pool_size),
        "max_client_conn": "5000",
        "ignore_startup_parameters": "extra_float_digits",
    }


class RabbitMQServer:
    """A RabbitMQ node of the test's own (its own node name, ports and data directory, no
    plugins), from the machine's RabbitMQ (Debian's ``rabbitmq-server`` package), run as
    the current user; ``guest`` may connect, from this machine only.

    The fault tests stop and restart it; the shared broker is never touched. Its data (the
    quorum queue and the batches in it) survive a restart, as a deployed node's do.
    """

    def __init__(self, directory: Path):
        self.bindir = rabbitmq_binaries()
        if self.bindir is None:
            raise RuntimeError("No RabbitMQ server: apt-get install rabbitmq-server")
        self.directory = directory
        self.port = free_port()
        self.node = f"fault{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq-env.conf").write_text("")  # not the machine's node's
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
        }
        self.start()

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bindir / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self):
        self.log = open(self.directory / "server.log", "a")  # noqa: SIM115 (closed in stop())
        self.popen = subprocess.Popen(
            [str(self.bindir / "rabbitmq-server")],
            cwd=self.directory,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

        def started() -> bool:  # await_startup fails at once until the node is registered
            if self.popen.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.node} exited: {self.directory}/log")
            return self.ctl("await_startup", "--timeout", "10").returncode == 0

        wait_for(started, 60, f"RabbitMQ node {self.node}", interval=0.2)

    def stop(self, sig=signal.SIGTERM):
        """SIGTERM: the node's own clean shutdown (``rabbitmqctl stop``). SIGKILL: a crash."""
        if sig == signal.SIGTERM and self.popen.poll() is None:
            self.ctl("stop")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(30)
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(30)
        self.log.close()


def rabbitmq_binaries() -> Path | None:
    """Where RabbitMQ's own scripts are (Debian's, not the wrapper on the PATH that runs
    them as the ``rabbitmq`` user), if this machine has RabbitMQ."""
    debian = Path("/usr/lib/rabbitmq/bin")
    if (debian / "rabbitmq-server").exists():
        return debian
    found = shutil.which("rabbitmq-server")
    return Path(found).parent if found else None


def pgbouncer_binary() -> str | None:
    """Debian's pgbouncer, in /usr/sbin, which a non-root PATH may lack."""
    return shutil.which("pgbouncer", path=f"{os.environ.get('PATH', '')}:/usr/sbin")


def server_binaries() -> Path | None:
    """Where this machine's newest PostgreSQL server binaries are (initdb, pg_ctl), if any."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    newest = max(found, key=lambda p: [int(n) for n in p.parts[4].split(".")], default=None)
    return newest.parent if newest else None
