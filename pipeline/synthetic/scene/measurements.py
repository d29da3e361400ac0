"""Garment attributes drawn as geometry, in figure heights from the top of the head."""

FITS = {"tight (fit)": 0.9, None: 1.04, "loose (fit)": 1.25}  # width factor of upper garments
LEG_WIDTHS = {"tight (fit)": 0.021, None: 0.033, "wide leg": 0.06}  # half-width at the hem
SHORTS_WIDTHS = {"tight (fit)": 0.045, "loose (fit)": 0.06}
FLARES = {"pencil": 0.05, None: 0.22, "a-line": 0.5}  # skirt widening per unit of length
TOP_LENGTHS = {"above-the-hip (length)": 0.43, "hip (length)": 0.51}  # hem height
SKIRT_LENGTHS = {"mini (length)": 0.57, "knee (length)": 0.71, "maxi (length)": 0.92}
COAT_LENGTHS = {"knee (length)": 0.71, "below the knee (length)": 0.8}
SLEEVE_LENGTHS = {"short (length)": 0.28, "elbow-length": 0.5, "three quarter (length)": 0.72,
                  "wrist-length": 0.97}  # fraction of the arm from shoulder to wrist


def nearest(table: dict, value: float):
    """The key of `table` whose value is closest to `value`."""
    return min(table, key=lambda k: abs(table[k] - value))
