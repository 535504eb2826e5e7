"""Routing strategies and the machinery the :class:`~costkit.policies.router.Router` shares between them.

* :mod:`.decision`: the ``Decision`` a strategy returns and the ``Strategy`` protocol;
* :mod:`.tiers`, :mod:`.heuristic`, :mod:`.learned`: the three ways to decide;
* :mod:`.cascade`: try cheap, check with a gate, escalate;
* :mod:`.eligibility`: capabilities, context windows, estimated cost (from the price book);
* :mod:`.fallback`: which failures move a call to the next model.

Modules are imported on use: ``learned`` needs numpy and the embedder, the others do not.
"""
