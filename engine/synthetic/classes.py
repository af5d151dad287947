"""Land-cover classes of the synthetic layout and their SAR and optical appearance."""

from __future__ import annotations

from enum import IntEnum


class LandCover(IntEnum):
    """Land-cover classes of the layout (``ScenePair.landcover``)."""

    WATER = 1
    FIELD = 2
    FOREST = 3
    ROAD = 4
    URBAN = 5  # streets, yards and squares between buildings
    BUILDING = 6


BUILDING_MIN_HEIGHT = 6.0
BUILDING_MAX_HEIGHT = 46.0  # metres: 6 + 22 (random) + 18 (towards the district centre)

# Typical C-band (Sentinel-1 VV, 30-45 deg incidence) sigma0 values in dB.
SAR_DB: dict[str, float] = {
    "water": -22.0,  # calm to light-wind open water: -18 .. -25 dB
    "forest": -7.0,  # volume scattering of closed canopies: about -6 .. -8 dB in VV
    "road": -18.0,  # smooth asphalt, mostly specular (-15 .. -20 dB)
    "urban_ground": -2.0,  # streets with cars, poles, small dihedrals at 10 m pixels
    "roof": 2.0,  # mean roof return (structures, chimneys, gravel)
    "facade": -1.0,  # per pixel facade return spread over the layover zone
    "double_bounce": 14.0,  # ground-wall dihedral, strongest for walls facing the sensor
    "shadow": -24.0,  # radar shadow: only thermal noise (NESZ of Sentinel-1 IW ~ -22 .. -26 dB)
}
# Crop types: (name, sigma0 dB, (red, green, blue, nir) reflectance).
CROPS: tuple[tuple[str, float, tuple[float, float, float, float]], ...] = (
    ("bare soil", -12.5, (0.21, 0.17, 0.12, 0.27)),
    ("grassland", -11.0, (0.06, 0.10, 0.05, 0.36)),
    ("winter wheat", -10.0, (0.05, 0.09, 0.04, 0.42)),
    ("maize", -9.0, (0.04, 0.08, 0.035, 0.47)),
    ("rapeseed", -8.5, (0.16, 0.19, 0.06, 0.41)),
)
REFLECTANCE: dict[str, tuple[float, float, float, float]] = {
    "water": (0.030, 0.045, 0.060, 0.020),
    "forest": (0.030, 0.055, 0.030, 0.300),
    "road": (0.110, 0.110, 0.115, 0.130),
    "urban_ground": (0.140, 0.140, 0.135, 0.170),
    "garden": (0.060, 0.090, 0.050, 0.330),
}
ROOFS: tuple[tuple[float, float, float, float], ...] = (
    (0.25, 0.12, 0.08, 0.28),  # terracotta tiles
    (0.18, 0.18, 0.19, 0.20),  # grey slate / metal
    (0.30, 0.30, 0.29, 0.33),  # light concrete
    (0.10, 0.10, 0.11, 0.12),  # dark bitumen
)
