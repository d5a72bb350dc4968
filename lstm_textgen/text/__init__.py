"""Text in: corpus files read, tokenized at every level, cached; pretrained vectors read into the embedding matrix."""
