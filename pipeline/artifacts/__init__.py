"""What micfp writes and reads back: the Zarr audio store, file locks, results sets."""
