"""Reading audio and bringing recordings into a Zarr audio store: file formats, folder layouts, ingest."""
