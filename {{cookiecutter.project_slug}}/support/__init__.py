"""What the tests and the benchmark share: real processes started and watched.

``support.processes`` starts the project's processes (from the Procfile) and private
``redis-server`` instances, and waits on conditions with deadlines; ``support.pgstat`` reads
who holds PostgreSQL connections. The application packages never import this one, and it
never imports the tests (the import contracts in pyproject.toml).
"""
