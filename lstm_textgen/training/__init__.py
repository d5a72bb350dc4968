"""Training a run: the recipe, planning and resuming a run, fine-tuning, the data windows, the callbacks that keep
the run directory current, schedules, validation, monitoring and distribution."""
