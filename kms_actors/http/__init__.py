"""The HTTP JSON API (AWS KMS wire protocol); built by the HTTP API issue."""
