"""Where work runs: cluster profiles, connecting a client, standalone clusters, TLS, batch scripts, task running."""
