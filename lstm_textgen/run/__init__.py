"""The run directory: every file name in it, its marker and lock, every run file read back checked, the training
state, the saved config's stamp, and the reports and curves made from it."""
