"""What is configured: read from the environment once, validated at start.

Every option is listed in ``Settings`` with its default; ``docs/operations.md`` documents
the same names. Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from registry.domain.policy import Policy
from registry.domain.working_days import YearNotice
from registry.tlog.note import NoteError
from registry.witness.cosignature import parse_witness_key
from registry.working_calendar import CalendarFileError, read_override_file

DEFAULT_ORIGIN = "registry.example/vc-credit"
# Where the service is reached, for the absolute links it writes (feeds, Atom). The
# default suits `registry serve` on this machine; production sets REGISTRY_PUBLIC_URL.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class SettingsError(ValueError):
    """A configuration value is unusable; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is outside {low}..{high}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def public_url(raw: str) -> str:
    """An http(s) origin, optionally with a path prefix; no query, fragment or user."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"REGISTRY_PUBLIC_URL={raw!r}: use an absolute http(s) URL such as "
            "https://credit.xining.gov.cn"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(f"REGISTRY_PUBLIC_URL={raw!r}: no query, fragment or user name")
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def trusted_proxies(raw: str) -> tuple[str, ...]:
    """Addresses or networks whose X-Forwarded-* headers are believed (comma-separated)."""
    found = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"REGISTRY_TRUSTED_PROXIES: {item!r} is not an IP address or network "
                "(e.g. 10.0.0.5 or 10.0.0.0/24)"
            ) from None
        found.append(item)
    return tuple(found)


@dataclass(frozen=True)
class WitnessEndpoint:
    """A credit bureau's witness (c2sp.org/tlog-witness) the log asks to cosign checkpoints."""

    # The name of its key, which is also its name in metrics and messages.
    name: str
    # Its cosignature/v1 verifier key string, ``name+hexid+base64(0x04 ‖ key)``.
    verifier_key: str
    # Its submission prefix: checkpoints go to ``<url>/add-checkpoint``.
    url: str


# Items of REGISTRY_WITNESSES: one per line, or several on a line separated by ';'.
_WITNESS_ITEMS = re.compile(r"[;\n]")


def parse_witnesses(raw: str) -> tuple[WitnessEndpoint, ...]:
    """REGISTRY_WITNESSES: ``<verifier key> <url>`` items, separated by newlines or ';'."""
    found: list[WitnessEndpoint] = []
    items = [item.strip() for item in _WITNESS_ITEMS.split(raw) if item.strip()]
    for number, item in enumerate(items, start=1):
        where = f"REGISTRY_WITNESSES item {number} ({item[:60]!r})"
        parts = item.split()
        if len(parts) != 2:
            raise SettingsError(
                f"{where}: want '<verifier key> <url>', e.g. 'bureau.example/witness+1a2b3c4d+"
                "BASE64 https://witness.bureau.example'; items are separated by ';' or newlines"
            )
        vkey, url = parts
        try:
            verifier = parse_witness_key(vkey)
        except NoteError as error:
            raise SettingsError(f"{where}: {error}") from None
        where = f"REGISTRY_WITNESSES witness {verifier.name}"
        parts_of = urlsplit(url)
        if parts_of.scheme not in ("http", "https") or not parts_of.hostname:
            raise SettingsError(f"{where}: {url!r} is not an absolute http(s) URL")
        if parts_of.query or parts_of.fragment or parts_of.username or parts_of.password:
            raise SettingsError(f"{where}: {url!r} must have no query, fragment or user name")
        if any(w.name == verifier.name for w in found):
            raise SettingsError(f"{where} is given twice (names must differ)")
        found.append(WitnessEndpoint(verifier.name, vkey, url.rstrip("/")))
    return tuple(found)


def _witness_quorum(env: Mapping[str, str], witnesses: tuple[WitnessEndpoint, ...]) -> int:
    """REGISTRY_WITNESS_QUORUM: by default all of them, as ``registry log check`` counts."""
    if not witnesses:
        if env.get("REGISTRY_WITNESS_QUORUM"):
            raise SettingsError(
                "REGISTRY_WITNESS_QUORUM counts the witnesses of REGISTRY_WITNESSES, "
                "and none are given"
            )
        return 0
    return _int(env, "REGISTRY_WITNESS_QUORUM", len(witnesses), 1, len(witnesses))


def _policy(env: Mapping[str, str]) -> Policy:
    try:
        return Policy.from_env(env)
    except ValueError as error:
        raise SettingsError(str(error)) from None


def _calendar_file(env: Mapping[str, str]) -> tuple[Path | None, tuple[YearNotice, ...]]:
    """REGISTRY_CALENDAR_FILE and the holiday notices in it, checked now (at start)."""
    raw = env.get("REGISTRY_CALENDAR_FILE")
    if not raw:
        return None, ()
    path = Path(raw).resolve()
    try:
        return path, read_override_file(path)
    except CalendarFileError as error:
        raise SettingsError(f"REGISTRY_CALENDAR_FILE: {error}") from None


@dataclass(frozen=True)
class Settings:
    # Where the service keeps its state: embedded database, development keys.
    home: Path
    # Any PostgreSQL; when empty the embedded database under ``home/pgdata`` is used.
    database_url: str | None
    # A streaming replica (hot standby) of it for reads that may lag (registry/db/replica.py),
    # used while no more than ``read_max_lag_ms`` behind; None: every read on the primary.
    database_read_url: str | None = None
    read_max_lag_ms: int = 2_000
    # The log's origin line and signing-key name (C2SP tlog-checkpoint).
    log_origin: str = DEFAULT_ORIGIN
    # How long the integrator gathers appended leaves before signing one checkpoint.
    batch_window_ms: int = 5
    # Private log signing key: a PKCS#8 PEM file, encrypted when a passphrase is set.
    log_key_file: Path | None = None
    log_key_passphrase: bytes | None = field(default=None, repr=False)
    # Master key (base64, 32 bytes) protecting practitioners' document numbers.
    pii_master_key: bytes | None = field(default=None, repr=False)
    # Generate missing development keys under ``home/keys`` instead of failing.
    dev_keys: bool = True
    pool_min: int = 2
    pool_max: int = 10
    # "json", "console" or "auto" (console on a terminal, JSON otherwise).
    log_format: str = "auto"
    # The base of every absolute URL the service writes (never taken from `Host`).
    public_url: str = DEFAULT_PUBLIC_URL
    # Proxies whose X-Forwarded-For/-Proto are honoured; nobody's when empty.
    trusted_proxies: tuple[str, ...] = ()
    # Largest request body accepted, in bytes.
    max_body_bytes: int = 4 * 1024 * 1024
    # How often the service ends the publicity of what reached its end (0: never; use
    # `registry expire` from a scheduler instead).
    expiry_interval_ms: int = 60_000
    # How often the service looks for bureau profiles to build ahead of lookups
    # (registry/bureau/profile_warmer.py; 0: never, lookups build what they miss).
    profile_warm_interval_ms: int = 1_000
    # A port on 127.0.0.1 serving the metrics without a token (registry/metrics_port.py);
    # 0: none (``GET /metrics`` with an admin token is always there).
    metrics_port: int = 0
    # The policy settings (publicity windows, deadlines, masks, bureau limits),
    # from REGISTRY_POLICY_<FIELD>; see registry/domain/policy.py.
    policy: Policy = field(default_factory=Policy)
    # Holiday notices for years the chinesecalendar library does not know (or to correct
    # one it does): a TOML file, read and checked here (registry/working_calendar.py).
    calendar_file: Path | None = None
    calendar_overrides: tuple[YearNotice, ...] = ()
    # The credit bureaus' witnesses asked to cosign each new checkpoint
    # (registry/tlog/witnessing.py); none: nothing is asked, nothing changes.
    witnesses: tuple[WitnessEndpoint, ...] = ()
    # How many of them must cosign a checkpoint for it to count as witnessed (1..n;
    # default n, the default of `registry log check --quorum`); 0 when there are none.
    witness_quorum: int = 0
    # How long a write sent with `Prefer: witnessed` waits for a witnessed checkpoint
    # that includes it before it settles for the log's signature alone.
    witness_wait_ms: int = 2_000
    # How long one add-checkpoint request to a witness may take.
    witness_timeout_ms: int = 5_000
    # The shortest time between two rounds of asking the witnesses: however fast the log
    # grows, each server process asks each witness at most 1000/this times a second.
    witness_interval_ms: int = 250

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def log_key_path(self) -> Path:
        return self.log_key_file or self.keys_dir / "log-signing.pem"

    @property
    def pii_key_path(self) -> Path:
        return self.keys_dir / "pii-master.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        import base64
        import binascii

        env = os.environ if env is None else env
        home = Path(env.get("REGISTRY_HOME") or "./var").resolve()
        origin = env.get("REGISTRY_LOG_ORIGIN") or DEFAULT_ORIGIN
        if any(ch.isspace() for ch in origin) or "+" in origin:
            raise SettingsError(
                f"REGISTRY_LOG_ORIGIN={origin!r}: a key name has no spaces and no '+'"
            )
        pii_raw = env.get("REGISTRY_PII_KEY")
        pii_key = None
        if pii_raw:
            try:
                pii_key = base64.b64decode(pii_raw, validate=True)
            except binascii.Error:
                raise SettingsError("REGISTRY_PII_KEY is not valid base64") from None
            if len(pii_key) != 32:
                raise SettingsError("REGISTRY_PII_KEY must decode to 32 bytes")
        key_file = env.get("REGISTRY_LOG_KEY_FILE")
        passphrase = env.get("REGISTRY_LOG_KEY_PASSPHRASE")
        log_format = env.get("REGISTRY_LOG_FORMAT", "auto")
        if log_format not in {"auto", "json", "console"}:
            raise SettingsError(f"REGISTRY_LOG_FORMAT={log_format!r}: use auto, json or console")
        pool_min = _int(env, "REGISTRY_POOL_MIN", 2, 1, 100)
        pool_max = _int(env, "REGISTRY_POOL_MAX", 10, 1, 500)
        if pool_min > pool_max:
            raise SettingsError("REGISTRY_POOL_MIN must not exceed REGISTRY_POOL_MAX")
        calendar_file, calendar_overrides = _calendar_file(env)
        witnesses = parse_witnesses(env.get("REGISTRY_WITNESSES", ""))
        return cls(
            home=home,
            database_url=env.get("DATABASE_URL") or None,
            database_read_url=env.get("DATABASE_READ_URL") or None,
            read_max_lag_ms=_int(env, "REGISTRY_READ_MAX_LAG_MS", 2_000, 100, 3_600_000),
            log_origin=origin,
            batch_window_ms=_int(env, "REGISTRY_BATCH_WINDOW_MS", 5, 0, 10_000),
            log_key_file=Path(key_file).resolve() if key_file else None,
            log_key_passphrase=passphrase.encode() if passphrase else None,
            pii_master_key=pii_key,
            dev_keys=_bool(env, "REGISTRY_DEV_KEYS", True),
            pool_min=pool_min,
            pool_max=pool_max,
            log_format=log_format,
            public_url=public_url(env.get("REGISTRY_PUBLIC_URL") or DEFAULT_PUBLIC_URL),
            trusted_proxies=trusted_proxies(env.get("REGISTRY_TRUSTED_PROXIES", "")),
            max_body_bytes=_int(env, "REGISTRY_MAX_BODY_BYTES", 4 * 1024 * 1024, 1024, 1 << 30),
            expiry_interval_ms=_int(env, "REGISTRY_EXPIRY_INTERVAL_MS", 60_000, 0, 86_400_000),
            profile_warm_interval_ms=_int(
                env, "REGISTRY_PROFILE_WARM_INTERVAL_MS", 1_000, 0, 86_400_000
            ),
            metrics_port=_int(env, "REGISTRY_METRICS_PORT", 0, 0, 65535),
            policy=_policy(env),
            calendar_file=calendar_file,
            calendar_overrides=calendar_overrides,
            witnesses=witnesses,
            witness_quorum=_witness_quorum(env, witnesses),
            witness_wait_ms=_int(env, "REGISTRY_WITNESS_WAIT_MS", 2_000, 0, 60_000),
            witness_timeout_ms=_int(env, "REGISTRY_WITNESS_TIMEOUT_MS", 5_000, 100, 60_000),
            witness_interval_ms=_int(env, "REGISTRY_WITNESS_INTERVAL_MS", 250, 0, 60_000),
        )
