"""The batch lane: offline work through the providers' batch APIs, at their batch prices.

::

    client = costkit.wrap(openai.OpenAI(), policies=[costkit.ExactCache()], sink=costkit.sinks.SQLiteSink("costs.db"))
    answers = costkit.batch.run(client, "chat.completions.create", [{"model": ..., "messages": ...}, ...],
                                state="jobs.db")

Each request is the keyword arguments of the wrapped method (``chat.completions.create``,
``responses.create``, ``embeddings.create``, anthropic ``messages.create``). The job goes through
OpenAI's Batch API (JSONL upload, ``/v1/batches``) or Anthropic's Message Batches, split at their
limits; answers come back as the SDK's own objects in input order, per-item errors as
:class:`ItemError` values. Policies apply per item where they make sense (exact cache, guardrails,
budgets, a prompt compressor: :mod:`costkit.batch.hooks`) and every item leaves one cost record
(``kind="batch"``) at batch prices. The state file makes the job resumable: a crashed process
is restarted with the same call (or :func:`resume`), and no item is ever submitted twice.

docs/batch.md has the walk-through and the measured figures.
"""

from __future__ import annotations

from .errors import BatchError, BatchItemCancelled, BatchItemExpired, JobBusy, JobNotFinished
from .hooks import BatchBudget, BatchCache, BatchPrepare
from .job import DEFAULT_STATE, Job, JobStatus, resume, run, submit
from .poll import Backoff
from .results import ItemError
from .split import ANTHROPIC_LIMITS, OPENAI_LIMITS, Limits

__all__ = [
    "ANTHROPIC_LIMITS",
    "DEFAULT_STATE",
    "OPENAI_LIMITS",
    "Backoff",
    "BatchBudget",
    "BatchCache",
    "BatchError",
    "BatchItemCancelled",
    "BatchItemExpired",
    "BatchPrepare",
    "ItemError",
    "Job",
    "JobBusy",
    "JobNotFinished",
    "JobStatus",
    "Limits",
    "resume",
    "run",
    "submit",
]
