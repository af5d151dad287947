"""SAR Toolbox Processing algorithms: one thin adapter per module, all built on :mod:`.base`."""
