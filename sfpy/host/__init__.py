"""Acting on a host: running commands and process groups, the journal of side effects, and
the one seam (:mod:`sfpy.host.work`) through which long work runs off an application's lock.

Imports nothing from :mod:`sfpy.engine`: the engine implements the protocols named here.
"""
