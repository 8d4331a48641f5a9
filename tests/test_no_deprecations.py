"""Importing the API and creating the app raise no deprecation warning about our code.

Litestar 2.23+ warns, with ``LitestarDeprecationWarning`` (a ``DeprecationWarning``),
about every handler declaration Litestar 3 will refuse: a dependency, path or query
parameter inferred from its name, a ``data`` body without a body marker,
``Parameter(header=…)``/``Parameter(query=…)``. It warns while the app is built, once
per handler, so a test that only checks the number of routes would never notice.

The check runs in a fresh interpreter: warnings raised while modules are imported
(an ``Annotated`` alias at module level) happen once per process, and this process
imported them long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import litestar
import msgspec

import registry

_REGISTRY = Path(registry.__file__).resolve().parent
_LITESTAR = Path(litestar.__file__).resolve().parent

_SCRIPT = """
import json, warnings

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from registry.api.app import create_app
    from registry.settings import Settings

    create_app(
        Settings.from_env({"REGISTRY_HOME": %(home)r}),
        database_url="postgresql://nobody@127.0.0.1:1/none",
        configure_logs=False,
    )
print(json.dumps([
    {"category": w.category.__name__, "filename": w.filename, "lineno": w.lineno,
     "message": str(w.message)}
    for w in caught if issubclass(w.category, DeprecationWarning)
]))
"""


def _about_our_code(filename: str) -> bool:
    """A warning is ours when it points into ``registry/``, or into Litestar (which warns
    from its own code about the handlers we declared), or at no file at all (Litestar's
    ``Parameter(header=…)`` warns from a dataclass ``__init__`` it generated). Third-party
    code and the standard library are not ours to fix here."""
    if not Path(filename).is_file():
        return True
    path = Path(filename).resolve()
    return path.is_relative_to(_REGISTRY) or path.is_relative_to(_LITESTAR)


def test_only_our_code_and_litestar_count() -> None:
    """The filter keeps our code and Litestar's, and leaves other libraries alone."""
    assert _about_our_code(str(_REGISTRY / "api" / "app.py"))
    assert _about_our_code(str(_LITESTAR / "handlers" / "base.py"))
    assert _about_our_code("<string>")
    assert not _about_our_code(str(msgspec.__file__))
    assert not _about_our_code(json.__file__)


def test_creating_the_app_raises_no_deprecation_warning(tmp_path: Path) -> None:
    """No DeprecationWarning (LitestarDeprecationWarning included) from our code or from
    Litestar about our declarations: every handler marks its dependencies
    (``NamedDependency``), path and query parameters (``FromPath``/``FromQuery``, or
    ``Annotated`` with ``Parameter``/``QueryParameter``/``HeaderParameter``) and body
    (``JSONBody``) explicitly."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _SCRIPT % {"home": str(tmp_path)}],
        capture_output=True, text=True, timeout=120, check=False,
        cwd=_REGISTRY.parent,
    )
    assert result.returncode == 0, result.stderr
    caught = json.loads(result.stdout.strip().splitlines()[-1])
    ours = [w for w in caught if _about_our_code(w["filename"])]
    assert not ours, f"{len(ours)} deprecation warning(s) about our code:\n" + "\n".join(
        f"{w['category']} ({w['filename']}:{w['lineno']}): {w['message']}" for w in ours
    )
