"""The contractual (subscription) job: a billing feed -> subscribers' tenure, renewals and churn -> sBG by
acquisition cohort -> holdout validation against baselines -> the gate -> a registered scoring model.

:mod:`~pipeline.contractual.prepare` (DuckDB SQL), :mod:`~pipeline.contractual.intervals` (the feed's billing
interval against ``business.billing_period``), :mod:`~pipeline.contractual.validation` (holdout
metrics and baselines), :mod:`~pipeline.contractual.workflow` (the stages chained, no I/O) and
:mod:`~pipeline.contractual.command` (``clv train`` for ``business.type: contractual``).
"""
