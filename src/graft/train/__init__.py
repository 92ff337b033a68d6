"""Training: the fit loop, its callbacks, resumable state, augmentation, distribution, the cached
features, pretraining model A, and the one transfer recipe."""
