"""Datasets, synthetic scenes, class sets, calibration sets and image I/O."""
