"""Network-scale in-situ training on emulated crossbar tiles (Lim et al., Huang et al.).

:mod:`.tiles` (tiles of any shape, a differential pair per weight, the 4x4 emulator's
physics), :mod:`.tile_rules` (the bench's rules on tiles), :mod:`.mlp` (the multi-layer
trainer), :mod:`.data` (datasets with no download).
"""
