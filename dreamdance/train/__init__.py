"""Training the DreamDance transformer: the dataset, its degradations, the loss and the trainer."""
