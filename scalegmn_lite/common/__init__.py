"""Plumbing shared by every layer of the package (no course content here): quick/full mode, seeds and
devices (:mod:`.config`), atomic verified files (:mod:`.io`), rate-limited progress bars
(:mod:`.progress`), stable metanetwork training (:mod:`.stable`) and computed claims (:mod:`.claims`).

Nothing in here imports the rest of the package; everything else may import it.
"""
