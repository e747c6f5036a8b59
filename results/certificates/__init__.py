"""Calibration certificates: the data a certificate states, its PDF and DCC renderings, signatures, verification."""
