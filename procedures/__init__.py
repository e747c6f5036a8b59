"""Calibration procedures: roles, points, tolerances, stability criteria, repeats and the model of each point."""
