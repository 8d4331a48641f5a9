"""The witness a credit bureau runs (c2sp.org/tlog-witness), and cosignature checks.

A witness remembers the latest checkpoint it cosigned for each log it follows and
cosigns a new one only if a consistency proof shows it extends that one, so a log
that shows one history to some and another to others needs the witnesses'
signatures on both: it cannot get them.

Import rule, so a bureau can run this from ``pip install --no-deps`` plus
``cryptography`` and ``httpx``: modules here import only the standard library,
``cryptography``, ``httpx``, ``registry.tlog.note`` and ``registry.tlog.merkle``
(tests/test_witness_cli.py holds them to it).

| module | answers |
|---|---|
| ``cosignature`` | how a cosignature/v1 is made, and the cosigner's key strings (pure) |
| ``protocol`` | what an add-checkpoint request says, and what the witness must answer (pure) |
| ``evidence`` | how a refused, conflicting pair of checkpoints is written down (pure) |
| ``store`` | the state directory: latest checkpoint per log, evidence files, crash-safe |
| ``keyfile`` | the witness's private key file |
| ``witness`` | the witness itself: one lock, the judgement, the store |
| ``server`` | HTTP over the standard library's ``http.server`` |
| ``policy`` | for clients: which pinned witnesses cosigned a checkpoint, and is it a quorum |
| ``commands`` | ``registry witness keygen`` and ``registry witness serve`` |
"""
