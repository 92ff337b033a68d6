"""The data: Fashion-MNIST, image decoding, the manifest, duplicates, the data gate, the split
and loading the split. Kept free of imports so that ``graft.predict`` can use ``decode``."""
