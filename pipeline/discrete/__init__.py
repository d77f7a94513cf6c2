"""The discrete-time job (``business.type: discrete``): purchases at fixed opportunities (a donation drive a
year, a season a year), modelled by BG/BB (:mod:`models.bgbb`). :mod:`~pipeline.discrete.prepare` turns a feed
into (x, t_x, n) histories in DuckDB SQL with the same quarantine rules; :mod:`~pipeline.discrete.validation`
fits and judges BG/BB on a holdout of later opportunities; :mod:`~pipeline.discrete.workflow` chains the stages
and :mod:`~pipeline.discrete.command` runs them for ``clv train``.
"""
