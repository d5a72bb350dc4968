"""The model: its Keras stack, the unrolled LSTM and the CPU training step that runs it, the numpy stepper that
generates, its saved weights read without TensorFlow, and what it takes in memory."""
