"""The LAION release format: file names, metadata schema, folder layouts, published datasets; synthetic and own-image parts."""
