"""docker-compose.yml is valid (Debian's ``docker-compose config``; no engine needed) and
wires what docs/operations.md says: the replica, the read URL and the metrics scrape."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_SECRETS = {"POSTGRES_PASSWORD": "pw", "REGISTRY_LOG_KEY_PASSPHRASE": "pp",
            "REGISTRY_PII_KEY": "a2V5"}


def _config(compose_file: Path) -> str:
    """The file as docker-compose understood it (variables filled in), or the test fails."""
    program = shutil.which("docker-compose")
    assert program, "docker-compose is missing: apt-get install -y docker-compose (see README)"
    done = subprocess.run(  # noqa: S603 - Debian's docker-compose on our own file
        [program, "-f", str(compose_file), "config"], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", **_SECRETS}, cwd=compose_file.parent, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_compose_file_is_valid_and_reads_from_the_replica() -> None:
    understood = _config(_ROOT / "docker-compose.yml")
    assert "DATABASE_READ_URL: postgresql://registry:pw@db-replica:5432/registry" in understood
    assert "pg_basebackup -h db -U registry" in understood
    assert "REGISTRY_READ_MAX_LAG_MS: '2000'" in understood
    assert "- monitoring" in understood and "metrics-token" in understood
    scrape = (_ROOT / "deploy" / "prometheus.yml").read_text()
    assert 'targets: ["registry:8000"]' in scrape
    assert "credentials_file: /run/secrets/metrics-token" in scrape


def test_an_invalid_compose_file_is_refused(tmp_path: Path) -> None:
    """The check can fail: a dependency on a service that does not exist."""
    broken = (_ROOT / "docker-compose.yml").read_text().replace(
        "condition: service_started",
        "condition: service_started\n      nowhere:\n        condition: service_started", 1)
    (tmp_path / "docker-compose.yml").write_text(broken)
    (tmp_path / "deploy").symlink_to(_ROOT / "deploy")
    program = shutil.which("docker-compose")
    assert program
    done = subprocess.run(  # noqa: S603
        [program, "-f", str(tmp_path / "docker-compose.yml"), "config"], capture_output=True,
        text=True, env={"PATH": "/usr/bin:/bin", **_SECRETS}, cwd=tmp_path, check=False,
    )
    assert done.returncode != 0 and "nowhere" in done.stderr
