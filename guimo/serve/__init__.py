"""`guimo serve`: a multi-tenant model service over run directories.

Layout (after fastapi/full-stack-fastapi-template's backend): ``core/config.py`` holds the one
settings object; ``db.py`` and ``models.py`` the ledger database; ``keys.py``, ``limits.py``,
``ledger.py`` and ``billing.py`` the tenant-facing rules; ``batching.py`` the per-model
micro-batcher; ``registry.py`` turns run directories (and ``--encoder`` text encoders) into served
models; ``collections.py`` keeps each tenant's search collections; ``api/`` the routes; ``main.py``
builds the app. Nothing here is imported by ``import guimo``.
"""
