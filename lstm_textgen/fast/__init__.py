"""The speed code, each piece behind one seam and pinned to Keras by its tests: the CPU training step
(step.py), the numpy stepper that generates (stepper.py) and the h5 weight reader (h5.py)."""
