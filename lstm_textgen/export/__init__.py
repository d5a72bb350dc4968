"""Exports: a trained run written in another form (SavedModel, TFLite, ONNX, a static web page), each a folder with
the model, tokenizer.json, a README and manifest.json, checked against the run's numpy stepper when written."""
