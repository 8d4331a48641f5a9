"""The regulators' console: their daily work in the browser, in Simplified Chinese.

Server-rendered pages under ``/console/`` (plain HTML forms that work without
JavaScript), for officials of the member units signed in with their regulator token
(``sessions.py``). Every form carries Litestar's CSRF token (``csrf.py``). The pages
call the same use cases as the API (``registry.credit``, ``registry.subjects``,
``registry.imports``): the same authority rules, the same audit-log leaves, no second
write path. ``router.py`` assembles the routes.
"""
