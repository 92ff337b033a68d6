"""The models: backbones, the pixel adapter, the head, surgery (clone, freeze, unfreeze), the
source model used as a classifier, the autoencoder. Kept free of imports: ``graft.config``
reads ``backbones.KINDS`` without TensorFlow."""
