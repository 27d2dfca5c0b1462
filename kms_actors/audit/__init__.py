"""The audit trail (CloudTrail-shaped events); built by the audit issue."""
