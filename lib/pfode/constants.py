"""Numerical constants shared by the modules of :mod:`pfode`."""
import math

LOG_2PI = math.log(2.0 * math.pi)
"""log(2π), the normalising constant of the Gaussian log-density, ``-½ n log 2π``."""
