"""SigV4 verification, identities and grants; built by the HTTP API and access control issues."""
