"""Internals of the invisible mark; the public API is `swapline.trust.watermark`.

- `payload`: what the mark says (tool, version, job id) and its Reed-Solomon protection;
- `pattern`: the key's frequency layout and the tile that is added to the luma;
- `detect`: folding, whitening, the synchronisation search and the detection threshold.
"""
