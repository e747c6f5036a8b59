"""Instrument drivers: one module per family, behind capability protocols."""
