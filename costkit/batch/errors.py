"""What the batch lane raises, and the exceptions that stand for items that never ran.

::

    CostkitError
    └── BatchError              a batch job cannot go on (its state file, its provider)
        ├── JobBusy             another live process owns this job
        ├── JobNotFinished      results asked for before every item has an outcome
        ├── BatchItemExpired    an item the provider did not run within the completion window
        └── BatchItemCancelled  an item the job's cancellation stopped before it ran

A provider's per-item error (a 400 for a bad request, a 500) is the SDK's own exception type
(``openai.BadRequestError``, ``anthropic.InternalServerError`` ...), built from the error line.
"""

from __future__ import annotations

from ..errors import CostkitError


class BatchError(CostkitError):
    """A batch job cannot go on."""


class JobBusy(BatchError):
    """Another live process is driving this job (its lease is held); wait for it or stop it."""


class JobNotFinished(BatchError):
    """Some items have no outcome yet: ``job.wait()`` first, or ask for ``results(partial=True)``."""


class BatchItemExpired(BatchError):
    """The provider did not run this item before the completion window ended (resubmittable)."""


class BatchItemCancelled(BatchError):
    """The job was cancelled before this item ran (resubmittable)."""


__all__ = ["BatchError", "BatchItemCancelled", "BatchItemExpired", "JobBusy", "JobNotFinished"]
