"""Image generation and the image store (``sfimage``).

One concern per module: :mod:`.params` (the canonical parameters of an image and its key),
:mod:`.config` (the distribution defaults from YAML), :mod:`.groups` (package groups),
:mod:`.builders` (the builder plug-ins: mmdebstrap, debootstrap), :mod:`.guest` (what makes a
tree boot as a guest: fstab, consoles, network from ``ip=``, services), :mod:`.store` (the
cache and the store) and :mod:`.progress` (what a build shows while it runs).

Kept light on purpose: ``sfimage build`` answering from the cache imports only
:mod:`.params`, :mod:`.config`, :mod:`.groups` and :mod:`.store`.
"""
