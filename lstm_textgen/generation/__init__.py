"""Text out of a trained run: the sampling rules and loop, suggestions and interactive writing, evaluation on
held-out text, and how much of a sample is copied."""
